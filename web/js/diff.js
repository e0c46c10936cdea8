// diff.js - what changed in a block: a word-level diff (longest common
// subsequence), as a list of [kind, text] with kind ' ', '-' or '+'.
// Blocks are at most a few thousand characters; past MAX_CELLS of work the
// whole old text is shown removed and the new one added.

const MAX_CELLS = 4_000_000;

const words = (text) => text.match(/\s+|[^\s]+/g) || [];

export function diff(before, after) {
  const a = words(before), b = words(after);
  // Common prefix and suffix first: most edits are small.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length, endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const out = [];
  const push = (kind, text) => {
    if (!text) return;
    const last = out[out.length - 1];
    if (last && last[0] === kind) last[1] += text; else out.push([kind, text]);
  };
  push(' ', a.slice(0, start).join(''));
  const x = a.slice(start, endA), y = b.slice(start, endB);
  if (x.length * y.length > MAX_CELLS) {
    push('-', x.join(''));
    push('+', y.join(''));
  } else {
    // lcs[i][j]: length of the LCS of x[i..] and y[j..], in one flat array.
    const w = y.length + 1;
    const lcs = new Uint32Array((x.length + 1) * w);
    for (let i = x.length - 1; i >= 0; i--) {
      for (let j = y.length - 1; j >= 0; j--) {
        lcs[i * w + j] = x[i] === y[j] ? lcs[(i + 1) * w + j + 1] + 1
          : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0, j = 0;
    while (i < x.length && j < y.length) {
      if (x[i] === y[j]) { push(' ', x[i]); i++; j++; }
      else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) push('-', x[i++]);
      else push('+', y[j++]);
    }
    while (i < x.length) push('-', x[i++]);
    while (j < y.length) push('+', y[j++]);
  }
  push(' ', a.slice(endA).join(''));
  return out;
}
