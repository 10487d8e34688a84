// Markdown tables that also read well on a terminal (columns padded to equal width).

export function markdownTable(header: string[], rows: string[][], align: ('l' | 'r')[] = []): string {
  const widths = header.map((title, column) => Math.max(title.length, 3, ...rows.map((row) => (row[column] ?? '').length)));
  const cell = (text: string, column: number) =>
    align[column] === 'r' ? text.padStart(widths[column]!) : text.padEnd(widths[column]!);
  const line = (cells: string[]) => `| ${cells.map((text, column) => cell(text, column)).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (align[column] === 'r' ? `${'-'.repeat(width + 1)}:` : `${'-'.repeat(width + 2)}`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** Thousands separators, no decimals: 181234 -> "181,234". */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export function formatRatio(value: number): string {
  if (!Number.isFinite(value)) return '—';
  return `${value.toFixed(2)}×`;
}
