/** An error or warning about a dataset, naming the document and field it concerns when there is one. */
export interface DatasetIssue {
  code: string;
  message: string;
  documentId?: string;
  /** 0-based position of the document in the request or file (blank lines of a file not counted). */
  index?: number;
  /** 1-based line of the file (blank lines counted), for a line that is not a valid document. */
  line?: number;
  field?: string;
  /** For warnings about several documents (capped). */
  documentIds?: string[];
  /** For warnings about several lines of a file (1-based, capped). */
  lines?: number[];
  count?: number;
}

/** Caps how many issues are kept so a batch of bad documents cannot blow up the row or memory. */
export class IssueList {
  readonly items: DatasetIssue[] = [];
  private dropped = 0;

  constructor(private readonly max = 200) {}

  add(issue: DatasetIssue): void {
    if (this.items.length < this.max) this.items.push(issue);
    else this.dropped++;
  }

  get size(): number {
    return this.items.length + this.dropped;
  }

  /** The kept issues, plus one saying how many more there were. */
  list(): DatasetIssue[] {
    if (!this.dropped) return [...this.items];
    return [
      ...this.items,
      { code: 'more_issues', message: `and ${this.dropped} more of this kind`, count: this.dropped },
    ];
  }
}

/** One line for people: where, what, and which examples a warning about several names. */
export function describeIssue(i: DatasetIssue): string {
  const where = [
    i.documentId !== undefined
      ? `document "${i.documentId}"`
      : i.line !== undefined
        ? `line ${i.line}`
        : i.index !== undefined
          ? `document #${i.index + 1}`
          : '',
    i.field ? `field "${i.field}"` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const text = where ? `${where}: ${i.message}` : i.message;
  return `${text}${namedExamples(i)}`;
}

/** ` (documents "a", "b", …)` or ` (lines 3, 7)` for a warning about several examples, else ''. */
function namedExamples(i: DatasetIssue): string {
  const names = i.documentIds?.map((id) => `"${id}"`) ?? i.lines?.map(String);
  if (!names?.length) return '';
  const more = i.count !== undefined && i.count > names.length ? ', …' : '';
  return ` (${i.documentIds ? 'documents' : 'lines'} ${names.join(', ')}${more})`;
}
