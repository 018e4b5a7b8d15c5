/* charts.js: a small vanilla SVG bar-chart helper for the pages (no dependencies, no build step).
 *
 * Progressive enhancement: the server renders the numbers as a table,
 *   <table data-chart="bar"> … <tr><th scope="row">label</th><td>count</td></tr> … </table>
 * and this script draws the same rows as a horizontal bar chart just before the table. The table
 * stays (screen readers, copy and paste, no-JS browsers); the drawing is aria-hidden.
 *
 * API (window.cardsvcCharts):
 *   bar(rows, {width, rowHeight, labelWidth, colour}) -> SVGSVGElement
 *       rows = [{label: "…", value: 12}, …]; bars are scaled to the largest value.
 *   fromTable(table) -> rows    (label = first cell, value = last cell of each body row)
 *   enhance(root = document)    draws every table[data-chart="bar"] under root once.
 * CSP-safe: elements, attributes and CSSOM only; never a style attribute or inline script.
 */
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const DEFAULTS = {width: 560, rowHeight: 26, labelWidth: 200, colour: "#1d5fa8", ink: "#1f2328"};

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function short(label, max) {
    return label.length > max ? label.slice(0, max - 1) + "…" : label;
  }

  function bar(rows, options) {
    const o = Object.assign({}, DEFAULTS, options || {});
    const top = Math.max(1, ...rows.map((r) => Number(r.value) || 0));
    const room = o.width - o.labelWidth - 60;
    const svg = el("svg", {viewBox: `0 0 ${o.width} ${rows.length * o.rowHeight + 8}`, width: "100%",
      preserveAspectRatio: "xMinYMin meet", "aria-hidden": "true", focusable: "false", class: "bar-chart"});
    svg.style.maxWidth = `${o.width}px`;  // CSSOM, not a style attribute: allowed by the pages' CSP
    rows.forEach((row, i) => {
      const y = i * o.rowHeight + 4, value = Number(row.value) || 0;
      const length = value > 0 ? Math.max(2, Math.round((value / top) * room)) : 0;
      const g = el("g", {"data-label": row.label, "data-value": value});
      g.appendChild(el("title", {}, `${row.label}: ${value}`));
      g.appendChild(el("text", {x: o.labelWidth - 8, y: y + 17, "text-anchor": "end", "font-size": 13,
        fill: o.ink}, short(String(row.label), 14)));
      g.appendChild(el("rect", {x: o.labelWidth, y: y + 3, width: length, height: o.rowHeight - 8, rx: 2,
        fill: o.colour}));
      g.appendChild(el("text", {x: o.labelWidth + length + 6, y: y + 17, "font-size": 13, fill: o.ink},
        String(value)));
      svg.appendChild(g);
    });
    return svg;
  }

  function fromTable(table) {
    return Array.from(table.querySelectorAll("tbody tr")).map((tr) => {
      const cells = tr.querySelectorAll("th, td");
      const last = cells[cells.length - 1];
      return {label: cells[0].textContent.trim(), value: Number(last.textContent.replace(/[^\d.-]/g, "")) || 0};
    });
  }

  function enhance(root) {
    for (const table of (root || document).querySelectorAll('table[data-chart="bar"]')) {
      if (table.dataset.drawn) continue;
      const holder = table.closest(".table-wrap") || table;
      holder.parentNode.insertBefore(bar(fromTable(table)), holder);
      table.dataset.drawn = "1";
    }
  }

  window.cardsvcCharts = {bar, fromTable, enhance};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => enhance());
  else enhance();
})();
