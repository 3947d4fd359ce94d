import { describe, expect, test } from "bun:test";
import { decodeEscape, findBrace, rawLine, stripComment, tokenize, tokenizeText } from "../../src/config/lexer.ts";

const texts = (s: string): string[] => tokenizeText(s).tokens.map((t) => t.text);
const cols = (s: string): number[] => tokenizeText(s).tokens.map((t) => t.pos.col);

describe("tokenize", () => {
  test("splits on blanks and reports 1-based columns of each token", () => {
    const { tokens, errors } = tokenizeText("  priority\t100  extra", "/etc/k.conf", 7);
    expect(errors).toEqual([]);
    expect(tokens.map((t) => [t.text, t.pos.file, t.pos.line, t.pos.col, t.quoted])).toEqual([
      ["priority", "/etc/k.conf", 7, 3, false],
      ["100", "/etc/k.conf", 7, 12, false],
      ["extra", "/etc/k.conf", 7, 17, false],
    ]);
  });

  test("# and ! start comments anywhere outside quotes", () => {
    expect(texts("router_id r1 # a comment")).toEqual(["router_id", "r1"]);
    expect(texts("router_id r1! bang comment")).toEqual(["router_id", "r1"]);
    expect(texts("# whole line")).toEqual([]);
    expect(texts('script "a # not ! comment" # comment')).toEqual(["script", "a # not ! comment"]);
    expect(texts("x 'it#s' y")).toEqual(["x", "it#s", "y"]);
  });

  test("\\# and \\! outside quotes are literal characters", () => {
    expect(texts("a\\#b c\\!")).toEqual(["a#b", "c!"]);
  });

  test("double and single quotes keep blanks; adjacent fragments form one token", () => {
    expect(texts('notify "/bin/x.sh a b" user')).toEqual(["notify", "/bin/x.sh a b", "user"]);
    expect(texts(`abcd" efg h jkl "mnop`)).toEqual(["abcd efg h jkl mnop"]);
    expect(texts(`abcd "efg h jkl" mnop`)).toEqual(["abcd", "efg h jkl", "mnop"]);
    expect(texts(`'x "y" z'`)).toEqual([`x "y" z`]);
    expect(texts(`"a 'b' c"`)).toEqual([`a 'b' c`]);
    const t = tokenizeText(`  pre"quoted part"post`).tokens;
    expect(t).toHaveLength(1);
    expect(t[0]).toMatchObject({ text: "prequoted partpost", quoted: true });
    expect(t[0].pos.col).toBe(3);
  });

  test("a quoted token's position is that of its opening quote", () => {
    expect(cols(`k "v w" 'x'`)).toEqual([1, 3, 9]);
  });

  test("escapes inside quotes", () => {
    expect(texts(`"a\\tb\\nc"`)).toEqual(["a\tb\nc"]);
    expect(texts(`"\\a\\b\\E\\f\\r\\v"`)).toEqual(["\x07\b\x1b\f\r\v"]);
    expect(texts(`"\\x41\\x4a\\x4Z"`)).toEqual(["AJ\x04Z"]);
    expect(texts(`"\\101\\0\\7"`)).toEqual(["A\0\x07"]);
    expect(texts(`"\\1012"`)).toEqual(["A2"]);
    expect(texts(`"\\cA\\c["`)).toEqual(["\x01\x1b"]);
    expect(texts(`"\\q\\\\\\""`)).toEqual(['q\\"']);
    expect(texts(`'it\\'s'`)).toEqual(["it's"]);
    expect(texts(`"\\xg"`)).toEqual(["xg"]);
  });

  test("backslashes outside quotes stay literal, except before a comment, quote or brace character", () => {
    expect(texts("a\\nb c\\")).toEqual(["a\\nb", "c\\"]);
    expect(texts(`a\\"b\\' \\{x\\}`)).toEqual([`a"b'`, "{x}"]);
    expect(texts("a\\\\#b")).toEqual(["a\\\\"]);
    expect(stripComment(rawLine("a\\\\#b", "f", 1)).line.text).toBe("a\\\\");
  });

  test("unquoted braces are tokens of their own, quoted braces are words", () => {
    const r = tokenizeText(`vrrp_instance VI_1{ a}b "{" '}'`);
    expect(r.tokens.map((t) => [t.text, t.quoted, t.pos.col])).toEqual([
      ["vrrp_instance", false, 1],
      ["VI_1", false, 15],
      ["{", false, 19],
      ["a", false, 21],
      ["}", false, 22],
      ["b", false, 23],
      ["{", true, 25],
      ["}", true, 29],
    ]);
  });

  test("an unterminated quote is reported at the quote with what was expected", () => {
    const r = tokenizeText(`notify "/bin/x a b`, "f.conf", 3);
    expect(r.errors).toEqual([
      { pos: { file: "f.conf", line: 3, col: 8 }, message: "unterminated quoted string", expected: 'a closing "' },
    ]);
    expect(r.tokens.map((t) => t.text)).toEqual(["notify", "/bin/x a b"]);
    expect(tokenizeText(`x 'abc`).errors[0]).toMatchObject({ pos: { col: 3 }, expected: "a closing '" });
  });

  test("columns come from the line's column map (substituted text)", () => {
    const l = { text: "ab cd", file: "m.conf", line: 4, cols: [5, 5, 6, 9, 9], colBase: 1 };
    expect(tokenize(l).tokens.map((t) => t.pos.col)).toEqual([5, 9]);
    expect(tokenize(rawLine("x y", "m.conf", 2, 10)).tokens.map((t) => t.pos.col)).toEqual([10, 12]);
  });
});

describe("stripComment", () => {
  const strip = (s: string) => {
    const r = stripComment(rawLine(s, "f", 1));
    return [r.line.text, r.line.colBase, r.continued] as const;
  };
  test("removes comments and surrounding blanks, keeping the column of the first character", () => {
    expect(strip("   priority 100   # c")).toEqual(["priority 100", 4, false]);
    expect(strip("\t! only comment")).toEqual(["", 2, false]);
    expect(strip(`a "#x" 'b!' \\# c`)).toEqual([`a "#x" 'b!' \\# c`, 1, false]);
  });
  test("flags a trailing backslash (multi-line definition continues)", () => {
    expect(strip("$X= \\")).toEqual(["$X= \\", 1, true]);
    expect(strip("  line \\  ")).toEqual(["line \\", 3, true]);
    expect(strip("a \\ # c")).toEqual(["a \\", 1, true]);
    expect(strip("a b")).toEqual(["a b", 1, false]);
  });
  test("an unterminated quote hides the rest of the line from comment removal", () => {
    expect(strip(`x "a # b`)).toEqual([`x "a # b`, 1, false]);
  });
});

describe("findBrace", () => {
  test("finds the first brace outside quotes", () => {
    expect(findBrace("vrrp_instance X {")).toBe(16);
    expect(findBrace(`a "{" '}' b}`)).toBe(11);
    expect(findBrace(`a "x\\"{" }`)).toBe(9);
    expect(findBrace("no braces")).toBe(-1);
  });
});

describe("decodeEscape", () => {
  test("returns the character and the index after the escape", () => {
    expect(decodeEscape("x41z", 0)).toEqual({ ch: "A", next: 3 });
    expect(decodeEscape("777", 0)).toEqual({ ch: String.fromCharCode(0o777 & 0xff), next: 3 });
    expect(decodeEscape("cz", 0)).toEqual({ ch: "\x1a", next: 2 });
    expect(decodeEscape("c", 0)).toEqual({ ch: "c", next: 1 });
  });
});
