// `fieldgate check`: every bad line of a password or ACL file in one pass. The parsers stop at the
// first bad line (that is what a running gateway needs: keep the old rules); a user fixing a file
// wants all of them at once.
import { readFileSync } from 'node:fs';
import { parseAcl } from './acl.js';
import { parsePasswordFile } from './password-file.js';

function readText(file: string): { text?: string; problem?: string } {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: `${file}: cannot read (${code ?? (err as Error).message})` };
  }
}

/**
 * Each line on its own through the real parser, so the messages are the parser's. Lines are
 * independent in both formats, except for a user defined twice in a password file, which
 * `crossLine` finds.
 */
function lineProblems(file: string, text: string, parse: (line: string) => void): string[] {
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    try {
      parse(line);
    } catch (error) {
      // The parser named line 1 of a one-line text: put the real line number in.
      const message = (error as Error).message.replace(/^[^\n]*?:1: /, '');
      problems.push(`${file}:${index + 1}: ${message}`);
    }
  });
  return problems;
}

export function aclFileProblems(file: string): string[] {
  const { text, problem } = readText(file);
  if (text === undefined) return [problem!];
  return lineProblems(file, text, (line) => parseAcl(line, file));
}

export function passwordFileProblems(file: string): string[] {
  const { text, problem } = readText(file);
  if (text === undefined) return [problem!.endsWith('(ENOENT)') ? `${problem!}: the file does not exist; create it with: fieldgate passwd -c ${file} USER` : problem!];
  const problems = lineProblems(file, text, (line) => parsePasswordFile(line, file));
  const firstLine = new Map<string, number>();
  text.split(/\r?\n/).forEach((line, index) => {
    const name = line.trim().startsWith('#') ? '' : line.slice(0, Math.max(0, line.indexOf(':'))).trim();
    if (name === '') return;
    const first = firstLine.get(name);
    if (first === undefined) firstLine.set(name, index + 1);
    else problems.push(`${file}:${index + 1}: user "${name}" is already defined on line ${first}; remove one of them`);
  });
  return problems;
}
