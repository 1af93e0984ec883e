/**
 * The run's DAG as SVG: one group per step, laid out once (`draw`), then changed in place
 * (`update`): a status change touches one node's class and texts, never the layout, so a
 * 1,000-step run stays responsive. A fan-out step is one node with counts per status; expanded,
 * it lists its instances (that one change lays the graph out again).
 */
import { durationOf, s, setText } from './dom.js';
import { layoutGraph } from './layout.js';
import { STEP_STATUSES, SYMBOL } from './status.js';

const WIDTH = 190;
const HEIGHT = 50;
const COUNTS = 18;
const ROW = 17;
const LABEL_MAX = 26;

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The instances of a fan-out step, by host, in host order. */
export function instancesOf(step) {
  if (!step.instances) return [];
  const hosts = step.hosts ?? Object.keys(step.instances);
  return hosts.filter((h) => step.instances[h]).map((h) => [h, step.instances[h]]);
}

/** True for a step that runs as several instances (one per host). */
export function isFanOut(step) {
  return step.executor === 'ssh' || Boolean(step.instances);
}

function sizeOf(step, expanded) {
  if (!isFanOut(step)) return { width: WIDTH, height: HEIGHT };
  const rows = expanded ? instancesOf(step).length : 0;
  return { width: WIDTH, height: HEIGHT + COUNTS + (rows ? rows * ROW + 6 : 0) };
}

function subtitle(step) {
  const parts = [`${SYMBOL[step.status] ?? ''} ${step.status}`, step.executor];
  if (step.attempts > 1) parts.push(`attempt ${step.attempts}`);
  if (step.startedAt && step.status !== 'queued' && step.status !== 'pending') {
    parts.push(durationOf(step.startedAt, step.status === 'running' ? undefined : step.finishedAt));
  }
  return parts.filter(Boolean).join(' · ');
}

function counts(step) {
  const tally = {};
  for (const [, inst] of instancesOf(step)) tally[inst.status] = (tally[inst.status] ?? 0) + 1;
  const text = STEP_STATUSES.filter((st) => tally[st]).map((st) => `${SYMBOL[st]}${tally[st]} ${st}`);
  return text.length ? text.join('  ') : 'hosts not resolved yet';
}

/** The graph of one run. */
export class GraphView {
  /** `onSelect(stepId)` on a click or Enter; `onToggle(stepId)` on a fan-out node's toggle. */
  constructor(container, { onSelect, onToggle }) {
    this.container = container;
    this.onSelect = onSelect;
    this.onToggle = onToggle;
    this.nodes = new Map();
    this.scale = 1;
    this.selected = undefined;
  }

  /** Lays out and draws every step (`steps`: Map id → step model, in definition order). */
  draw(steps, expanded) {
    const list = [...steps.entries()].map(([id, step]) => ({
      id,
      needs: step.needs ?? [],
      ...sizeOf(step, expanded.has(id)),
    }));
    const started = performance.now();
    const layout = layoutGraph(list);
    performance.measure('conveyor:layout', { start: started, detail: { steps: list.length } });
    this.size = { width: Math.max(layout.width, 10), height: Math.max(layout.height, 10) };
    const svg = s('svg', {
      class: 'graph',
      role: 'group',
      'aria-label': 'The run’s steps and their needs',
      viewBox: `0 0 ${this.size.width} ${this.size.height}`,
    });
    svg.append(
      s(
        'defs',
        {},
        s(
          'marker',
          {
            id: 'arrow',
            viewBox: '0 0 10 10',
            refX: 9,
            refY: 5,
            markerWidth: 7,
            markerHeight: 7,
            orient: 'auto',
          },
          s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }),
        ),
      ),
    );
    const edges = s('g', { class: 'edges' });
    for (const edge of layout.edges)
      edges.append(s('path', { d: pathOf(edge.points), 'marker-end': 'url(#arrow)' }));
    const nodes = s('g', { class: 'nodes' });
    this.nodes.clear();
    for (const [id, step] of steps) {
      const box = layout.nodes.get(id);
      if (!box) continue;
      const node = this.node(id, step, box, expanded.has(id));
      nodes.append(node.g);
      this.nodes.set(id, node);
    }
    svg.append(edges, nodes);
    svg.addEventListener('click', (event) => this.clicked(event));
    svg.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' && event.key !== ' ') return;
      event.preventDefault();
      this.clicked(event);
    });
    this.svg = svg;
    this.applyScale();
    this.container.replaceChildren(svg);
    if (this.selected) this.select(this.selected);
  }

  node(id, step, box, expanded) {
    const fanOut = isFanOut(step);
    const label = step.name ?? id;
    const g = s('g', {
      class: 'node',
      transform: `translate(${box.x},${box.y})`,
      'data-step': id,
      tabindex: 0,
      role: 'button',
      'aria-label': `step ${label}`,
    });
    const rect = s('rect', { class: 'box', width: box.width, height: box.height, rx: 7 });
    const title = s('text', { class: 'title', x: 10, y: 20 }, clip(label, LABEL_MAX));
    const tip = s('title', {}, label === id ? id : `${label} (${id})`);
    const sub = s('text', { class: 'sub', x: 10, y: 38 });
    const progress = s('rect', { class: 'progress', x: 0, y: box.height - 4, height: 4, width: 0, rx: 2 });
    g.append(tip, rect, title, sub, progress);
    const node = { g, sub, progress, width: box.width, fanOut, expanded, rows: [] };
    if (fanOut) {
      node.counts = s('text', { class: 'counts', x: 10, y: HEIGHT + 6 });
      const toggle = s(
        'text',
        { class: 'toggle', x: box.width - 10, y: 20, 'text-anchor': 'end', 'data-toggle': id },
        expanded ? '− hosts' : '+ hosts',
      );
      g.append(node.counts, toggle);
      if (expanded) {
        instancesOf(step).forEach(([host], i) => {
          const row = s('text', { class: 'instance', x: 14, y: HEIGHT + COUNTS + 8 + i * ROW });
          node.rows.push({ host, row });
          g.append(row);
        });
      }
    }
    this.fill(node, step);
    return node;
  }

  /** Redraws one step's node from its model; returns false when its size must change (re-draw). */
  update(id, step) {
    const node = this.nodes.get(id);
    if (!node) return true;
    if (node.expanded && node.rows.length !== instancesOf(step).length) return false;
    this.fill(node, step);
    return true;
  }

  fill(node, step) {
    const cls = `node status-${step.status}${node.g.classList.contains('selected') ? ' selected' : ''}`;
    if (node.g.getAttribute('class') !== cls) node.g.setAttribute('class', cls);
    setText(node.sub, subtitle(step));
    const percent = step.status === 'running' && typeof step.percent === 'number' ? step.percent : 0;
    node.progress.setAttribute('width', String((node.width * Math.min(Math.max(percent, 0), 100)) / 100));
    if (node.counts) setText(node.counts, counts(step));
    for (const { host, row } of node.rows) {
      const inst = step.instances?.[host];
      const status = inst?.status ?? 'pending';
      setText(row, `${SYMBOL[status]} ${clip(host, LABEL_MAX - 4)} · ${status}`);
      row.setAttribute('class', `instance status-${status}`);
    }
  }

  clicked(event) {
    const target = event.target instanceof Element ? event.target : undefined;
    const toggle = target?.closest('[data-toggle]');
    if (toggle) return this.onToggle(toggle.getAttribute('data-toggle'));
    const node = target?.closest('[data-step]');
    if (node) this.onSelect(node.getAttribute('data-step'));
  }

  /** Marks `id` as the selected step. */
  select(id) {
    this.nodes.get(this.selected)?.g.classList.remove('selected');
    this.selected = id;
    this.nodes.get(id)?.g.classList.add('selected');
  }

  /** Zooms by `factor` (1 = unchanged), or to fit the container's width with `'fit'`. */
  zoom(factor) {
    if (!this.size) return;
    // Fitting a large run to the width would make its nodes unreadable: it scrolls instead.
    if (factor === 'fit')
      this.scale = Math.max(0.4, Math.min(1, (this.container.clientWidth - 4) / this.size.width));
    else this.scale = Math.min(3, Math.max(0.1, this.scale * factor));
    this.applyScale();
  }

  applyScale() {
    this.svg.setAttribute('width', String(Math.round(this.size.width * this.scale)));
    this.svg.setAttribute('height', String(Math.round(this.size.height * this.scale)));
  }
}

function pathOf(points) {
  if (points.length === 2) {
    const [a, b] = points;
    const mid = (a.x + b.x) / 2;
    return `M${a.x},${a.y} C${mid},${a.y} ${mid},${b.y} ${b.x},${b.y}`;
  }
  return points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ');
}
