// dom.js - building the page from data, safely.
//
// Everything shown comes from the model or a user, so nothing is ever
// parsed as HTML: h() makes elements and text nodes only, and there is no
// innerHTML anywhere in the app. Properties starting with "on" become
// event listeners; "class", "text" and "dataset" are shorthands; the rest
// become attributes (aria-*, role, type, ...), false or null ones left out.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'readOnly') {
      el[key] = value;
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

// A number with thousands separators, for token counts.
export const fmt = (n) => Number(n || 0).toLocaleString('en-US');

// "2026-12-04T20:44:56Z" as the reader's local date and time,
// "2026-12-04 21:44:56". Written out by hand: the browser's date
// formatting (toLocaleString, Intl) loads its locale data in the first call
// of each page, which cost more than drawing the whole first screen.
export function when(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} `
    + `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

// Announces a short status line to screen readers and shows it.
export function toast(message, kind = 'info') {
  const box = $('#toast');
  box.className = `toast ${kind}`;
  box.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.textContent = ''; box.className = 'toast'; }, 6000);
}
