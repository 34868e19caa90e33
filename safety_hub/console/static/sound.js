// Audible annunciation with WebAudio tones (no sound files).
//
// The horn sounds while any alarm waits for acknowledgement, with a pattern by the highest
// priority waiting. "Silence" stops it without acknowledging anything; the next annunciation
// (a new alarm, or an alarm that comes back) sounds again. The state is mirrored in
// document.body.dataset.sound: off | on | silenced | blocked (the browser's autoplay policy
// holds the audio until the operator clicks somewhere).

// Per priority: tone frequency (Hz), beeps per burst, beep length and gap (s), burst period (s).
const PATTERNS = {
  critical: { freq: [1100, 880], beeps: 3, len: 0.16, gap: 0.08, period: 1.2 },
  high: { freq: [880, 660], beeps: 2, len: 0.2, gap: 0.12, period: 2.0 },
  medium: { freq: [740], beeps: 1, len: 0.28, gap: 0, period: 3.0 },
  low: { freq: [620], beeps: 1, len: 0.2, gap: 0, period: 5.0 },
};

export class Annunciator {
  constructor(onState) {
    this.onState = onState || (() => {});
    this.ctx = null;
    this.priority = null; // highest priority waiting for acknowledgement, or null
    this.silenced = false;
    this.timer = null;
    this.state = "off";
    this.gestureHandler = () => this.unblock();
    document.addEventListener("pointerdown", this.gestureHandler, true);
    document.addEventListener("keydown", this.gestureHandler, true);
  }

  context() {
    if (!this.ctx) {
      const Ctor = window.AudioContext || window.webkitAudioContext;
      if (!Ctor) return null;
      this.ctx = new Ctor();
      this.ctx.addEventListener("statechange", () => this.refresh());
    }
    return this.ctx;
  }

  unblock() {
    const ctx = this.context();
    if (ctx && ctx.state === "suspended") ctx.resume().then(() => this.refresh(), () => {});
  }

  /** The highest unacknowledged priority now (null: nothing waits). */
  setWaiting(priority) {
    this.priority = priority;
    this.refresh();
  }

  /** A new annunciation: sound again even if silenced. */
  annunciate() {
    this.silenced = false;
    this.refresh();
  }

  silence() {
    this.silenced = true;
    this.refresh();
  }

  refresh() {
    let next;
    if (!this.priority) next = "off";
    else if (this.silenced) next = "silenced";
    else {
      const ctx = this.context();
      if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
      next = !ctx || ctx.state !== "running" ? "blocked" : "on";
    }
    if (next === "on") this.play();
    else this.stopPlaying();
    if (next !== this.state) {
      this.state = next;
      this.onState(next);
    }
  }

  play() {
    const pattern = PATTERNS[this.priority] || PATTERNS.low;
    if (this.timer && this.playing === pattern) return;
    this.stopPlaying();
    this.playing = pattern;
    const burst = () => this.burst(pattern);
    burst();
    this.timer = setInterval(burst, pattern.period * 1000);
  }

  stopPlaying() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.playing = null;
  }

  burst(pattern) {
    const ctx = this.ctx;
    if (!ctx || ctx.state !== "running") return;
    let at = ctx.currentTime + 0.02;
    for (let i = 0; i < pattern.beeps; i += 1) {
      const freq = pattern.freq[i % pattern.freq.length];
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.setValueAtTime(freq, at);
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.18, at + 0.01);
      gain.gain.setValueAtTime(0.18, at + pattern.len - 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + pattern.len);
      osc.connect(gain).connect(ctx.destination);
      osc.start(at);
      osc.stop(at + pattern.len + 0.01);
      at += pattern.len + pattern.gap;
    }
  }
}
