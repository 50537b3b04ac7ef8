// The viewer's canvases: one or two panes (the selected image, and beside it the query image or the best
// match) sharing one view (zoom relative to each pane's fit, the centre in image fractions), so zoom and
// pan stay in step. Pictures come from /api/view/{id}/picture, rendered by the server from the stored
// values at the asked window; while one loads, the pane shows what it has (the card's thumbnail) and a
// spinner. The heatmap is drawn over the picture at full size. Drag: window/level (left button with the
// window tool, or right button) or pan (pan tool, or Shift); wheel: slices (Ctrl: zoom); keys: arrows
// and Page Up/Down for slices, + and - zoom, f fits, 1 shows image pixels 1:1.

import { api } from "./api.js";

const STOPS = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
/** Pixels a side asked of the server: 1024 while the picture is shown at most that big, else 2048. */
const SIDES = [1024, 2048];
const OVERLAY_ALPHA = 0.5;

/** [r, g, b] of a value in [0, 1] along the server's colour map (medsearch.explain.render). */
export function heatColour(value) {
  const scaled = Math.min(1, Math.max(0, value)) * (STOPS.length - 1);
  const low = Math.min(Math.floor(scaled), STOPS.length - 2);
  const part = scaled - low;
  return STOPS[low].map((c, i) => Math.round(c * (1 - part) + STOPS[low + 1][i] * part));
}

/** A canvas of the grid's cells coloured from its lowest (0) to its highest value (1). */
export function heatCanvas(grid) {
  const rows = grid.length;
  const cols = grid[0].length;
  const flat = grid.flat();
  const low = Math.min(...flat);
  const high = Math.max(...flat);
  const canvas = document.createElement("canvas");
  canvas.width = cols;
  canvas.height = rows;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(cols, rows);
  flat.forEach((value, i) => {
    const [r, g, b] = heatColour(high > low ? (value - low) / (high - low) : 0);
    pixels.data.set([r, g, b, 255], i * 4);
  });
  context.putImageData(pixels, 0, 0);
  return { canvas, low, high };
}

class Pane {
  constructor(box, onDrawn) {
    this.box = box;
    this.canvas = box.querySelector("canvas");
    this.context = this.canvas.getContext("2d");
    this.picture = null;
    this.size = [0, 0];
    this.overlay = null;
    this.id = null;
    this.seq = 0;
    this.inFlight = false;
    this.wanted = null;
    this.onDrawn = onDrawn;
    this.redrawAll = () => onDrawn(this, null);
  }

  fit() {
    const [w, h] = this.size;
    return w && h ? Math.min(this.canvas.width / w, this.canvas.height / h) : 1;
  }

  resize() {
    const { width, height } = this.canvas.getBoundingClientRect();
    this.canvas.width = Math.max(1, Math.round(width));
    this.canvas.height = Math.max(1, Math.round(height));
  }

  draw(view) {
    const c = this.context;
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.fillStyle = "#000";
    c.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.picture) return;
    const [w, h] = this.size;
    const s = this.fit() * view.zoom;
    c.setTransform(s, 0, 0, s, this.canvas.width / 2 - view.u * w * s, this.canvas.height / 2 - view.v * h * s);
    c.imageSmoothingEnabled = s < 2;
    c.drawImage(this.picture, 0, 0, w, h);
    if (this.overlay && view.overlay) {
      const { heat, offset, side } = this.overlay;
      c.globalAlpha = OVERLAY_ALPHA;
      c.imageSmoothingEnabled = true;
      c.drawImage(heat.canvas, -offset[0], -offset[1], side, side);
      c.globalAlpha = 1;
    }
    this.box.dataset.drawn = String(this.id);
  }

  /** Start showing image ``id`` of native ``size``: ``placeholder`` (an <img> or null) at once, else the
   *  picture shown now when ``keep`` (the next slice of a series), else nothing. */
  start(id, size, placeholder, keep = false) {
    this.seq += 1;
    this.id = id;
    this.side = SIDES[0];
    this.final = false;
    this.overlay = null;
    this.wanted = null;
    this.box.dataset.window = "";
    this.size = size[0] && size[1] ? size : [0, 0];
    if (!keep) this.picture = null;
    if (placeholder && placeholder.complete && placeholder.naturalWidth) this.usePlaceholder(placeholder);
    else if (placeholder) { // the card's thumbnail is still on its way: take it when it comes, if still needed
      const seq = this.seq;
      placeholder.addEventListener("load", () => {
        if (seq === this.seq && !this.final) { this.usePlaceholder(placeholder); this.redrawAll(); }
      }, { once: true });
    }
    this.box.classList.add("loading");
  }

  usePlaceholder(img) {
    if (!this.size[0] || !this.size[1]) this.size = [img.naturalWidth, img.naturalHeight];
    this.picture = img;
  }

  /** Fetch the picture at ``window`` ([center, width] or null: the image's own); one request at a
   *  time, the latest window wins. */
  request(window, side = this.side || SIDES[0]) {
    this.side = side;
    this.wanted = { window, seq: this.seq, side };
    if (!this.inFlight) this.fetchWanted();
  }

  async fetchWanted() {
    const { window, seq, side } = this.wanted;
    this.wanted = null;
    this.inFlight = true;
    const params = new URLSearchParams({ size: String(side) });
    if (window) { params.set("center", String(window[0])); params.set("width", String(window[1])); }
    try {
      const response = await api(`/api/view/${this.id}/picture?${params}`);
      const bitmap = await createImageBitmap(await response.blob());
      if (seq === this.seq) this.shown(bitmap, response);
    } catch (error) {
      if (seq === this.seq) this.box.title = error.message;
    } finally {
      this.inFlight = false;
      if (seq === this.seq) this.box.classList.remove("loading");
      if (this.wanted) this.fetchWanted();
    }
  }

  shown(bitmap, response) {
    if (!this.size[0] || !this.size[1]) this.size = [bitmap.width, bitmap.height];
    this.picture = bitmap;
    this.final = true;
    const center = response.headers.get("X-Window-Center");
    const width = response.headers.get("X-Window-Width");
    const window = center === null ? null : [Number(center), Number(width)];
    this.box.dataset.window = window ? window.join("/") : "";
    this.onDrawn(this, window);
  }
}

/** The viewer of ``box`` (the panes, the toolbar's controls are wired by detail.js). */
export class Viewer {
  constructor(box, { onWindow, onSlice }) {
    this.box = box;
    this.view = { zoom: 1, u: 0.5, v: 0.5, overlay: false };
    this.window = null;
    this.tool = "window";
    this.onWindow = onWindow;
    this.onSlice = onSlice;
    const drawn = (pane, window) => this.drawn(pane, window);
    this.main = new Pane(box.querySelector("#pane-main"), drawn);
    this.ref = new Pane(box.querySelector("#pane-ref"), drawn);
    this.wire();
    new ResizeObserver(() => this.redraw()).observe(box.querySelector("#panes"));
  }

  panes() { return this.ref.box.hidden ? [this.main] : [this.main, this.ref]; }

  redraw() {
    for (const pane of this.panes()) {
      pane.resize();
      pane.draw(this.view);
      const shown = Math.max(...pane.size) * pane.fit() * this.view.zoom;
      const larger = Math.max(...pane.size) > pane.side && shown > pane.side * 1.1;
      if (pane.id !== null && larger && pane.side < SIDES[1]) {
        pane.request(pane === this.main ? this.window : null, SIDES[1]);
      }
    }
    const scale = this.main.fit() * this.view.zoom;
    this.box.dataset.zoom = scale.toFixed(3);
    this.box.querySelector("#zoom-level").textContent = `${Math.round(scale * 100)}%`;
  }

  drawn(pane, window) {
    if (pane === this.main && window && !this.window) this.setWindow(window, false);
    this.redraw();
  }

  /** Show image ``id`` (``size``: its native [width, height], [0, 0] when unknown) in the main pane,
   *  keeping the window when ``keepWindow`` (a slice of the same series); ``fetch`` false: the
   *  placeholder only (a DICOMweb item, whose file the server does not keep). */
  show(id, size, placeholder, keepWindow = false, fetch = true) {
    if (!keepWindow) this.window = null;
    this.main.start(id, size, placeholder, keepWindow);
    if (fetch) this.main.request(this.window);
    else this.main.box.classList.remove("loading");
    this.redraw();
  }

  /** The reference pane: stored image ``id`` (``placeholder`` meanwhile), or with ``id`` null the
   *  picture ``placeholder`` alone (an uploaded image); hidden when neither is given. */
  showReference(id, size = [0, 0], placeholder = null) {
    this.ref.box.hidden = id === null && !placeholder;
    if (!this.ref.box.hidden) {
      this.ref.start(id, size, placeholder);
      if (id !== null) this.ref.request(null);
      else this.ref.box.classList.remove("loading");
    }
    this.redraw();
  }

  setWindow(window, render = true) {
    this.window = window;
    this.onWindow(window);
    if (render && window) this.main.request(window);
  }

  fit() { Object.assign(this.view, { zoom: 1, u: 0.5, v: 0.5 }); this.redraw(); }

  oneToOne() { this.view.zoom = 1 / this.main.fit(); this.redraw(); }

  zoomBy(factor, at = null) {
    const pane = this.main;
    const [w, h] = pane.size;
    const before = pane.fit() * this.view.zoom;
    const zoom = Math.min(64, Math.max(0.1, this.view.zoom * factor));
    if (at && w && h) {
      const after = pane.fit() * zoom;
      const dx = at[0] - pane.canvas.width / 2;
      const dy = at[1] - pane.canvas.height / 2;
      this.view.u += dx / (w * before) - dx / (w * after);
      this.view.v += dy / (h * before) - dy / (h * after);
    }
    this.view.zoom = zoom;
    this.redraw();
  }

  setOverlay(heatmap) {
    this.main.overlay = heatmap && { heat: heatCanvas(heatmap.grid), offset: heatmap.image_offset,
      side: heatmap.square_side };
    this.redraw();
    return this.main.overlay;
  }

  showOverlay(on) { this.view.overlay = on; this.redraw(); }

  wire() {
    for (const pane of [this.main, this.ref]) {
      pane.canvas.addEventListener("pointerdown", (event) => this.drag(event, pane));
      pane.canvas.addEventListener("contextmenu", (event) => event.preventDefault());
      pane.canvas.addEventListener("wheel", (event) => this.wheel(event, pane), { passive: false });
    }
    this.box.addEventListener("keydown", (event) => this.key(event));
  }

  wheel(event, pane) {
    event.preventDefault();
    if (event.ctrlKey || event.metaKey || !this.onSlice(0)) {
      const rect = pane.canvas.getBoundingClientRect();
      this.zoomBy(Math.exp(-event.deltaY / 400), [event.clientX - rect.left, event.clientY - rect.top]);
    } else {
      this.onSlice(Math.sign(event.deltaY));
    }
  }

  key(event) {
    const slices = { ArrowDown: 1, ArrowUp: -1, PageDown: 1, PageUp: -1, ArrowRight: 1, ArrowLeft: -1 };
    if (event.key in slices) this.onSlice(slices[event.key]);
    else if (event.key === "+" || event.key === "=") this.zoomBy(1.25);
    else if (event.key === "-") this.zoomBy(0.8);
    else if (event.key === "f") this.fit();
    else if (event.key === "1") this.oneToOne();
    else return;
    event.preventDefault();
    event.stopPropagation();
  }

  drag(event, pane) {
    event.preventDefault();
    this.box.querySelector("#panes").focus();
    const windowing = this.window && !event.shiftKey && (event.button === 2 || this.tool === "window");
    const start = { x: event.clientX, y: event.clientY, u: this.view.u, v: this.view.v, window: this.window };
    const move = (e) => {
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      if (windowing) {
        const [center, width] = start.window;
        this.setWindow([Math.round(center + dy * width / 300), Math.max(1, Math.round(width * Math.exp(dx / 200)))]);
      } else {
        const s = pane.fit() * this.view.zoom;
        this.view.u = start.u - dx / (pane.size[0] * s || 1);
        this.view.v = start.v - dy / (pane.size[1] * s || 1);
        this.redraw();
      }
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }
}
