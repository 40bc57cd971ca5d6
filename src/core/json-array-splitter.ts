/**
 * Splits the text of one top-level JSON array, fed in pieces, into the texts of its elements, so
 * a large array (an edges file) can be read one element at a time. It only finds where elements
 * begin and end (strings, escapes and nesting); each element's text is then parsed on its own
 * (parseJson), which judges it. Whatever the formatting, an array written on one line or one
 * element per line, the elements come out the same.
 */
import { LinksError } from "./errors.ts";

const WS = new Set([0x20, 0x0a, 0x0d, 0x09]);

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (!WS.has(text.charCodeAt(i))) return false;
  return true;
}

export class JsonArraySplitter {
  private state: "before" | "inside" | "after" = "before";
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** the current element's text from earlier pieces */
  private carry = "";
  private elements = 0;
  private commas = 0;
  /** characters consumed before the current piece, for error offsets */
  private offset = 0;

  /** maxElementChars: the longest element held (an element that never ends is refused, input_too_large) */
  constructor(
    private readonly what: string,
    private readonly maxElementChars = Number.POSITIVE_INFINITY,
  ) {}

  private fail(message: string, at: number): never {
    throw new LinksError("invalid_json", `${this.what}: ${message} at offset ${at}`);
  }

  private checkLength(text: string): string {
    if (text.length <= this.maxElementChars) return text;
    throw new LinksError("input_too_large", `${this.what}: element ${this.elements + 1} is longer than ${this.maxElementChars} characters`);
  }

  /** Feeds the next piece of text; calls onElement with each element's text completed in it. */
  push(piece: string, onElement: (text: string, index: number) => void): void {
    let i = 0;
    const n = piece.length;
    if (this.state === "before") {
      while (i < n && WS.has(piece.charCodeAt(i))) i++;
      if (i === n) return void (this.offset += n);
      if (piece.charCodeAt(i) !== 0x5b) this.fail("expected a JSON array ([...])", this.offset + i);
      this.state = "inside";
      i++;
    }
    let start = i;
    for (; i < n && this.state === "inside"; i++) {
      const c = piece.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x5b || c === 0x7b) this.depth++;
      else if (c === 0x5d || c === 0x7d) {
        if (this.depth > 0) {
          this.depth--;
          continue;
        }
        if (c === 0x7d) this.fail("unexpected '}'", this.offset + i);
        const text = this.checkLength(this.carry + piece.slice(start, i));
        this.carry = "";
        if (!isBlank(text)) onElement(text, this.elements++);
        else if (this.elements > 0 || this.commas > 0) this.fail("an element is missing before ']'", this.offset + i);
        this.state = "after";
        start = i + 1;
      } else if (c === 0x2c && this.depth === 0) {
        const text = this.checkLength(this.carry + piece.slice(start, i));
        this.carry = "";
        if (isBlank(text)) this.fail("an element is missing before ','", this.offset + i);
        this.commas++;
        onElement(text, this.elements++);
        start = i + 1;
      }
    }
    if (this.state === "inside") {
      this.carry += piece.slice(start);
      this.checkLength(this.carry);
    } else {
      for (; i < n; i++) if (!WS.has(piece.charCodeAt(i))) this.fail("unexpected data after the array", this.offset + i);
    }
    this.offset += n;
  }

  /** Call once the input is over: refuses an array that never closed. */
  end(): void {
    if (this.state === "before") this.fail("expected a JSON array, got an empty input", this.offset);
    if (this.state === "inside") this.fail("the array is not closed (']' missing)", this.offset);
  }
}
