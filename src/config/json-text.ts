// JSON files for people: a syntax error says where, as line and column, and what was expected
// (JSON.parse says "position 28", or for some errors nothing at all).

export type JsonParse = { ok: true; value: unknown } | { ok: false; line: number; column: number; problem: string };

export function parseJsonText(text: string): JsonParse {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    const { offset, problem } = firstSyntaxError(text.replace(/^\uFEFF/, ''));
    const { line, column } = lineAndColumn(text.replace(/^\uFEFF/, ''), offset);
    return { ok: false, line, column, problem };
  }
}

/** `not valid JSON at line 3, column 12: expected "," or "}" after a value (got "\"")`. */
export function describeJsonError(parsed: Extract<JsonParse, { ok: false }>): string {
  return `not valid JSON at line ${parsed.line}, column ${parsed.column}: ${parsed.problem}`;
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

class SyntaxProblem {
  constructor(readonly offset: number, readonly problem: string) {}
}

/** A strict JSON scanner that stops at the first error (JSON.parse has already said there is one). */
function firstSyntaxError(text: string): { offset: number; problem: string } {
  let i = 0;
  const got = () => (i >= text.length ? 'the end of the file' : JSON.stringify(text[i]));
  const fail = (what: string): never => {
    throw new SyntaxProblem(i, `expected ${what} (got ${got()})`);
  };
  const space = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const string = () => {
    const start = i;
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) throw new SyntaxProblem(i, text[i] === '\n' ? 'a string must end on its line (a missing closing ")' : 'control character in a string (write it as \\n, \\t or \\u00XX)');
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) throw new SyntaxProblem(i, 'expected 4 hex digits after \\u');
          i += 4;
        } else if (i >= text.length || !'"\\/bfnrt'.includes(text[i]!)) {
          throw new SyntaxProblem(i, `unknown escape \\${text[i] ?? ''} in a string`);
        }
      }
      i++;
    }
    if (i >= text.length) throw new SyntaxProblem(start, 'a string that is never closed (missing ")');
    i++;
  };
  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m || m[0] === '-' || m[0] === '') fail('a value');
    i += m![0].length;
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{') return object();
    if (c === '[') return array();
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    if (c === "'") throw new SyntaxProblem(i, 'strings and keys take double quotes (") in JSON, not \'');
    fail('a value (a string, number, object, array, true, false or null)');
  };
  const object = () => {
    i++;
    space();
    if (text[i] === '}') {
      i++;
      return;
    }
    for (;;) {
      space();
      if (text[i] === '}') throw new SyntaxProblem(i, 'a comma before "}": JSON allows no trailing comma');
      if (text[i] === "'") throw new SyntaxProblem(i, 'keys take double quotes (") in JSON, not \'');
      if (text[i] !== '"') fail('a key in double quotes');
      string();
      space();
      if (text[i] !== ':') fail('":" after the key');
      i++;
      value();
      space();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return;
      }
      fail('"," or "}" after a value (a missing comma?)');
    }
  };
  const array = () => {
    i++;
    space();
    if (text[i] === ']') {
      i++;
      return;
    }
    for (;;) {
      space();
      if (text[i] === ']') throw new SyntaxProblem(i, 'a comma before "]": JSON allows no trailing comma');
      value();
      space();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return;
      }
      fail('"," or "]" after a value (a missing comma?)');
    }
  };
  try {
    value();
    space();
    if (i < text.length) {
      if (text.startsWith('//', i) || text.startsWith('/*', i)) throw new SyntaxProblem(i, 'JSON has no comments: use a "_comment" key');
      fail('the end of the file after the value');
    }
  } catch (error) {
    if (!(error instanceof SyntaxProblem)) throw error;
    if ((text.startsWith('//', error.offset) || text.startsWith('/*', error.offset)) && !error.problem.includes('comments')) {
      return { offset: error.offset, problem: 'JSON has no comments: use a "_comment" key' };
    }
    return { offset: error.offset, problem: error.problem };
  }
  // JSON.parse refused what this scanner accepts (should not happen): say so without a place.
  return { offset: 0, problem: 'not accepted by JSON.parse' };
}
