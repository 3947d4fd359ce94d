// global_defs umask: keepalived's numeric and symbolic forms, and its errors.
import { describe, expect, test } from "bun:test";
import { parseUmask } from "../../src/config/umask.ts";

describe("parseUmask", () => {
  test("numbers as strtol base 0: octal with a leading 0, hex with 0x, else decimal", () => {
    expect(parseUmask("022")).toEqual({ value: 0o022 });
    expect(parseUmask("0077")).toEqual({ value: 0o077 });
    expect(parseUmask("0x12")).toEqual({ value: 0x12 });
    expect(parseUmask("18")).toEqual({ value: 18 });
    expect(parseUmask("0")).toEqual({ value: 0 });
  });

  test("S_I* names joined by |, spaces allowed", () => {
    expect(parseUmask("IWGRP|IWOTH")).toEqual({ value: 0o022 });
    expect(parseUmask("IRWXG | IRWXO")).toEqual({ value: 0o077 });
  });

  test("keepalived's errors", () => {
    expect(parseUmask("01000")).toEqual({ error: "invalid umask value 01000" });
    expect(parseUmask("089")).toEqual({ error: "invalid umask value 089" });
    expect(parseUmask("022 7")).toEqual({ error: "Extra parameter(s) to umask option" });
    expect(parseUmask("IWGRP|IWXYZ")).toEqual({ error: "Unknown umask bit IWXYZ" });
    expect(parseUmask("IWGRP|")).toEqual({ error: "Invalid umask syntax IWGRP|" });
  });
});
