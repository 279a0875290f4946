// SPDX-License-Identifier: MIT
// The sample's two pictures: the training curves and a grid of test digits with the model's predictions.
// Text is drawn with a 3×5 bitmap font of the characters 0-9 . % (enough for tick labels and predictions).
import { Canvas, type RGB } from '../common/png.js';

/** Each glyph's 3×5 pixels, row by row ('1' = ink). */
const GLYPHS: Record<string, string> = {
  '0': '111101101101111', '1': '010110010010111', '2': '111001111100111', '3': '111001111001111',
  '4': '101101111001001', '5': '111100111001111', '6': '111100111101111', '7': '111001001001001',
  '8': '111101111101111', '9': '111101111001111', '.': '000000000000010', '%': '101001010100101',
};

/** Writes `text` with its top-left corner at (x, y), each font pixel `scale` pixels wide; returns the width drawn. */
export function text(c: Canvas, x: number, y: number, s: string, color: RGB, scale = 2): number {
  let cx = x;
  for (const ch of s) {
    const g = GLYPHS[ch];
    if (g === undefined) throw new Error(`draw.text: no glyph for ${JSON.stringify(ch)} (the font has ${Object.keys(GLYPHS).join(' ')})`);
    for (let i = 0; i < 15; i++) if (g[i] === '1') c.rect(cx + (i % 3) * scale, y + Math.floor(i / 3) * scale, scale, scale, color);
    cx += 4 * scale;
  }
  return cx - x - scale;
}

const textWidth = (s: string, scale: number) => s.length * 4 * scale - scale;

export const BLUE: RGB = [40, 90, 200];
export const ORANGE: RGB = [230, 120, 20];
const GREEN: RGB = [20, 140, 50], RED: RGB = [210, 30, 30], GREY: RGB = [120, 120, 120], LIGHT: RGB = [225, 225, 225], BLACK: RGB = [0, 0, 0];

/** A series to plot: points (x, y) joined by lines, and dots at the points if asked. */
export interface Series { xs: number[]; ys: number[]; color: RGB; dots?: boolean }

interface Panel {
  x: number; y: number; w: number; h: number;
  xmax: number;
  ymin: number; ymax: number;
  /** y ticks: value and label. */
  yticks: [number, string][];
  /** x ticks: value and label. */
  xticks: [number, string][];
  /** Maps a data y to the axis (identity or log10). */
  fy?: (v: number) => number;
  series: Series[];
}

function panel(c: Canvas, p: Panel): void {
  const fy = p.fy ?? ((v: number) => v);
  const X = (v: number) => p.x + (p.w * v) / p.xmax;
  const Y = (v: number) => p.y + p.h - (p.h * (fy(v) - fy(p.ymin))) / (fy(p.ymax) - fy(p.ymin));
  for (const [v, label] of p.yticks) {
    c.line(p.x, Y(v), p.x + p.w, Y(v), LIGHT);
    text(c, p.x - 6 - textWidth(label, 2), Y(v) - 5, label, GREY);
  }
  for (const [v, label] of p.xticks) {
    c.line(X(v), p.y, X(v), p.y + p.h, LIGHT);
    text(c, X(v) - textWidth(label, 2) / 2, p.y + p.h + 6, label, GREY);
  }
  c.line(p.x, p.y + p.h, p.x + p.w, p.y + p.h, BLACK);
  c.line(p.x, p.y, p.x, p.y + p.h, BLACK);
  const clampY = (v: number) => Math.min(Math.max(v, p.ymin), p.ymax);
  for (const s of p.series) {
    for (let i = 1; i < s.xs.length; i++) c.line(X(s.xs[i - 1]!), Y(clampY(s.ys[i - 1]!)), X(s.xs[i]!), Y(clampY(s.ys[i]!)), s.color, 2);
    if (s.dots) for (let i = 0; i < s.xs.length; i++) c.disc(X(s.xs[i]!), Y(clampY(s.ys[i]!)), 3.5, s.color);
  }
}

/** What the curve picture shows. */
export interface Curves {
  /** Steps per epoch: x ticks at epoch ends, labelled by epoch number. */
  stepsPerEpoch: number;
  totalSteps: number;
  /** Mean training loss per logging window (x: the step it ends at). */
  loss: { steps: number[]; values: number[] };
  /** Accuracy in % on training batches, before the step trained on them. */
  trainAcc: { steps: number[]; values: number[] };
  /** Accuracy in % on the test set at each epoch's end. */
  testAcc: { steps: number[]; values: number[] };
}

/**
 * Two panels: the training loss on a log scale (left, blue) and accuracy in % (right: training batches blue,
 * the test set orange with dots, and the final test accuracy written out), both against the step, with ticks at
 * the end of each epoch (labelled with the epoch number).
 */
export function drawCurves(path: string, d: Curves): void {
  const W = 960, H = 360;
  const c = new Canvas(W, H);
  const epochs = Math.round(d.totalSteps / d.stepsPerEpoch);
  const every = Math.max(1, Math.ceil(epochs / 10));
  const xticks: [number, string][] = [];
  for (let e = every; e <= epochs; e += every) xticks.push([e * d.stepsPerEpoch, String(e)]);

  // Loss: decades from below the smallest value to above the largest.
  const lo = Math.min(...d.loss.values), hi = Math.max(...d.loss.values);
  const dmin = Math.floor(Math.log10(lo)), dmax = Math.ceil(Math.log10(hi));
  const yticks: [number, string][] = [];
  for (let k = dmin; k <= dmax; k++) yticks.push([10 ** k, k >= 0 ? String(10 ** k) : (10 ** k).toFixed(-k)]);
  panel(c, {
    x: 80, y: 20, w: 360, h: 300, xmax: d.totalSteps, ymin: 10 ** dmin, ymax: 10 ** dmax, fy: Math.log10,
    yticks, xticks, series: [{ xs: d.loss.steps, ys: d.loss.values, color: BLUE }],
  });

  // Accuracy: from a round number below the lowest point to 100%.
  const all = [...d.trainAcc.values, ...d.testAcc.values];
  const amin = Math.min(...all);
  const stepA = amin >= 95 ? 1 : amin >= 80 ? 5 : 10;
  const floor = Math.max(0, Math.floor((amin - 0.5) / stepA) * stepA);
  const aticks: [number, string][] = [];
  for (let v = floor; v <= 100; v += stepA) aticks.push([v, `${v}%`]);
  panel(c, {
    x: 580, y: 20, w: 360, h: 300, xmax: d.totalSteps, ymin: floor, ymax: 100,
    yticks: aticks, xticks, series: [
      { xs: d.trainAcc.steps, ys: d.trainAcc.values, color: BLUE },
      { xs: d.testAcc.steps, ys: d.testAcc.values, color: ORANGE, dots: true },
    ],
  });
  // The final test accuracy, large, in the empty lower right of the panel.
  const last = d.testAcc.values.at(-1);
  if (last !== undefined) {
    const label = `${last.toFixed(2)}%`;
    text(c, 580 + 360 - 12 - textWidth(label, 5), 20 + 300 - 24 - 25, label, ORANGE, 5);
  }
  c.save(path);
}

/**
 * The first rows × cols test digits (dark on light, 2× size), each with the predicted label below it: green when
 * right; when wrong, red, with a red frame and the true label in grey beside the prediction.
 */
export function drawPredictions(path: string, images: Float32Array, labels: Int32Array, predicted: Int32Array, rows = 10, cols = 10): void {
  const cellW = 68, cellH = 90, pad = 10;
  const c = new Canvas(cols * cellW + pad, rows * cellH + pad, [250, 250, 250]);
  const n = Math.min(rows * cols, labels.length);
  for (let k = 0; k < n; k++) {
    const x0 = pad + (k % cols) * cellW, y0 = pad + Math.floor(k / cols) * cellH;
    const right = predicted[k] === labels[k];
    if (!right) c.rect(x0 - 3, y0 - 3, 62, 62, RED);
    for (let i = 0; i < 28; i++) {
      for (let j = 0; j < 28; j++) {
        const g = Math.round(255 * (1 - images[k * 784 + i * 28 + j]!));
        c.rect(x0 + 2 * j, y0 + 2 * i, 2, 2, [g, g, g]);
      }
    }
    const w = text(c, x0 + 18, y0 + 62, String(predicted[k]), right ? GREEN : RED, 3);
    if (!right) text(c, x0 + 18 + w + 8, y0 + 67, String(labels[k]), GREY, 2);
  }
  c.save(path);
}
