// SPDX-License-Identifier: MIT
// A one-line progress display for training: on a terminal a bar redrawn in place (steps/s, loss, ETA); elsewhere
// (a log file, CI) plain lines now and then, so that logs stay readable.

/** Where progress goes: process.stderr by default; anything with write() (and isTTY for a redrawn bar). */
export interface ProgressOutput {
  write(text: string): unknown;
  /** A terminal: redraw one line in place. */
  isTTY?: boolean;
  /** The terminal's width (default 80). */
  columns?: number;
}

/** Options of {@link ProgressBar}. */
export interface ProgressOptions {
  /** Steps in the whole run, when known: gives the bar and the ETA. */
  total?: number;
  /** Epochs in the run (shown as epoch e/E). */
  epochs?: number;
  output?: ProgressOutput;
  /** Least time between two updates: default 100 ms on a terminal, 5 s otherwise. */
  intervalMs?: number;
  /** The clock, in ms (tests pass a fake one). Default performance.now. */
  now?: () => number;
}

/** What the display shows at a step. */
export interface ProgressState {
  /** Steps done (1 after the first). */
  step: number;
  /** The current epoch, from 0. */
  epoch: number;
  /** The latest loss read back, if any. */
  loss?: number;
  /** More numbers to show after the loss (accuracy, learning rate...): `{ acc: '97.5%', lr: 1e-3 }`. */
  metrics?: Record<string, number | string>;
}

/** The default output: stderr in Node, the console elsewhere. */
function defaultOutput(): ProgressOutput {
  const p = (globalThis as { process?: { stderr?: ProgressOutput } }).process;
  if (p?.stderr) return p.stderr;
  return { write: (s: string) => console.log(s.replace(/\n$/, '')), isTTY: false };
}

/** 75 → "1m15s", 3725 → "1h02m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const formatLoss = (x: number) => (Number.isFinite(x) ? x.toPrecision(4) : String(x));

/**
 * A training progress display.
 * @example
 * const bar = new ProgressBar({ total: 1000, epochs: 2 });
 * for (let step = 1; step <= 1000; step++) bar.update({ step, epoch: step > 500 ? 1 : 0, loss });
 * bar.finish({ step: 1000, epoch: 1, loss });
 */
export class ProgressBar {
  private readonly out: ProgressOutput;
  private readonly tty: boolean;
  private readonly interval: number;
  private readonly now: () => number;
  private readonly start: number;
  private last = -Infinity;
  private drawn = false;

  constructor(private readonly options: ProgressOptions = {}) {
    this.out = options.output ?? defaultOutput();
    this.tty = this.out.isTTY === true;
    this.interval = options.intervalMs ?? (this.tty ? 100 : 5000);
    this.now = options.now ?? (() => performance.now());
    this.start = this.now();
  }

  /** Shows the state if the last update is at least intervalMs old. */
  update(s: ProgressState): void {
    const t = this.now();
    if (t - this.last < this.interval) return;
    this.last = t;
    this.show(this.line(s, t));
  }

  /** A line that stays: the summary of an epoch. */
  epochDone(epoch: number, meanLoss: number | undefined, step: number): void {
    const t = this.now();
    const e = this.options.epochs;
    this.clear();
    this.out.write(`epoch ${epoch + 1}${e ? `/${e}` : ''} · step ${step} · ${meanLoss === undefined ? 'no loss read' : `mean loss ${formatLoss(meanLoss)}`} · ${formatDuration((t - this.start) / 1000)}\n`);
    this.last = t;
  }

  /** The final state, always shown, and the line ended. */
  finish(s: ProgressState): void {
    const t = this.now();
    this.clear();
    this.out.write(`${this.line(s, t, true)}\n`);
  }

  /** Ends a bar being redrawn without a final state (the run failed), so that what follows starts on a new line. */
  interrupt(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }

  /** The text for a state at time t. */
  line(s: ProgressState, t: number, done = false): string {
    const elapsed = (t - this.start) / 1000;
    const rate = elapsed > 0 ? s.step / elapsed : 0;
    const { total, epochs } = this.options;
    const parts: string[] = [];
    if (epochs && epochs > 1) parts.push(`epoch ${Math.min(s.epoch + 1, epochs)}/${epochs}`);
    if (total && this.tty) {
      const width = 20, filled = Math.min(width, Math.floor((width * s.step) / total));
      parts.push(`[${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}] ${s.step}/${total}`);
    } else parts.push(total ? `step ${s.step}/${total}` : `step ${s.step}`);
    parts.push(`${rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)} steps/s`);
    // Time before the numbers: a line cut at the terminal's width keeps the ETA.
    if (done) parts.push(formatDuration(elapsed));
    else if (total && rate > 0) parts.push(`ETA ${formatDuration((total - s.step) / rate)}`);
    if (s.loss !== undefined) parts.push(`loss ${formatLoss(s.loss)}`);
    for (const [k, v] of Object.entries(s.metrics ?? {})) parts.push(`${k} ${typeof v === 'number' ? formatLoss(v) : v}`);
    return parts.join(' · ');
  }

  private show(text: string): void {
    if (!this.tty) { this.out.write(`${text}\n`); return; }
    const cols = Math.max(20, (this.out.columns ?? 80) - 1);
    this.out.write(`\r\x1b[2K${text.length > cols ? text.slice(0, cols) : text}`);
    this.drawn = true;
  }

  /** Erases the bar being redrawn, so that a line can be written in its place. */
  private clear(): void {
    if (this.tty && this.drawn) this.out.write('\r\x1b[2K');
    this.drawn = false;
  }
}
