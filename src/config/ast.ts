/**
 * The syntax tree both front-ends produce: keepalived.conf after preprocessing
 * (includes, @conditions, $parameters, ~SEQ/~LST expanded) is a tree of statements.
 * The schema-driven interpreter (config/interpret.ts) turns it into the typed model.
 */
import type { SourcePos } from "./diagnostics.ts";

/** One word of a statement, quotes removed and escapes resolved. */
export interface Token {
  text: string;
  pos: SourcePos;
  /** True when any part of the word was quoted (so `"{"` is a word, not a brace). */
  quoted: boolean;
}

/**
 * One statement: `keyword arg arg ... [{ children }]`.
 * `children` is present only when the statement opened a `{ ... }` block.
 */
export interface Statement {
  keyword: Token;
  args: Token[];
  children?: Statement[];
  /** Position of the closing brace, when there was a block. */
  end?: SourcePos;
}
