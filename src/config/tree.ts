/**
 * Builds the `Statement` tree from preprocessed token lines: a statement is the words of
 * one logical line (up to a brace); `{` opens a block for the statement just before it
 * (on the same line or the next) and `}` closes it. Unbalanced braces become diagnostics.
 */
import type { Statement, Token } from "./ast.ts";
import type { Diagnostics, SourcePos } from "./diagnostics.ts";

interface Frame {
  statements: Statement[];
  /** Column of the owner's keyword, to compare with the indentation of the closing `}`. */
  indent: number;
  /** The statement that owns this block; null for a stray `{` whose contents are kept in place. */
  owner: Statement | null;
  open: SourcePos;
}

const isOpen = (t: Token): boolean => !t.quoted && t.text === "{";
const isClose = (t: Token): boolean => !t.quoted && t.text === "}";

/** Turns logical token lines into statements, reporting extra `}`, stray `{` and missing `}`. */
export function buildTree(lines: Iterable<Token[]>, diags: Diagnostics): Statement[] {
  const root: Statement[] = [];
  const stack: Frame[] = [];
  let current = root;
  // The statement a following `{` would belong to (cleared by anything in between).
  const at: { candidate: Statement | null } = { candidate: null };
  const suspects: Array<{ frame: Frame; close: SourcePos }> = [];

  for (const line of lines) {
    let words: Token[] = [];
    const flush = (): void => {
      if (words.length === 0) return;
      const st: Statement = { keyword: words[0], args: words.slice(1) };
      current.push(st);
      at.candidate = st;
      words = [];
    };
    for (const tok of line) {
      if (isOpen(tok)) {
        flush();
        const owner = at.candidate;
        if (owner !== null && owner.children === undefined) {
          owner.children = [];
          stack.push({ statements: current, owner, open: tok.pos, indent: owner.keyword.pos.col });
          current = owner.children;
        } else {
          diags.error(tok.pos, "Unexpected '{'", "a keyword before '{'");
          stack.push({ statements: current, owner: null, open: tok.pos, indent: tok.pos.col });
        }
        at.candidate = null;
      } else if (isClose(tok)) {
        flush();
        const frame = stack.pop();
        if (frame === undefined) {
          diags.error(tok.pos, "unexpected '}': no block is open here (extra '}')", "a keyword or the end of the file");
        } else {
          if (frame.owner) frame.owner.end = tok.pos;
          current = frame.statements;
          // A `}` indented like an outer block's keyword suggests this inner block was never closed.
          if (tok.pos.col !== frame.indent && stack.some((f) => f.indent === tok.pos.col)) suspects.push({ frame, close: tok.pos });
        }
        at.candidate = null;
      } else {
        words.push(tok);
      }
    }
    flush();
  }
  const name = (f: Frame) => (f.owner ? `'${f.owner.keyword.text}' block` : "block");
  // Blame the blocks the indentation points at first, then the outermost open ones.
  const blamed = suspects.slice(-stack.length).reverse();
  for (const s of blamed)
    diags.error(s.frame.open, `missing '}': the ${name(s.frame)} opened here is never closed (judging by indentation, the '}' at ${s.close.line}:${s.close.col} closes an outer block)`, "'}'");
  for (let i = stack.length - 1 - blamed.length; i >= 0; i--)
    diags.error(stack[i].open, `missing '}': the ${name(stack[i])} opened here is never closed`, "'}'");
  return root;
}
