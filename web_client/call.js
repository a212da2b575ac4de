// One RTCPeerConnection to the unionhub SFU. The server is the only offerer (docs/PROTOCOL.md):
// every offer carries `tracks`, a map mid -> slot, which says which transceiver carries our
// mic/camera/screen ("publish") and which carries whose media ("subscribe").

import { t } from './i18n.js';

const ICE_GATHER_TIMEOUT_MS = 2000;
// The camera's VP8 in three temporal layers: the hub forwards thumbnails the base layer only
// (a quarter of the frames) and the active speaker every frame (docs/PROTOCOL.md).
const CAMERA_SCALABILITY = 'L1T3';

export class Call {
  /**
   * @param {object} opts
   * @param {(answer: {type: string, sdp: string}) => void} opts.sendAnswer
   * @param {(source: string) => MediaStreamTrack|null} opts.localTrack  current local track of a source
   * @param {(sub: {mid, participant, source, kind, track}) => void} opts.onSubscribe
   * @param {(sub: {mid, participant, source, kind}) => void} opts.onUnsubscribe
   * @param {(err: Error) => void} opts.onError
   * @param {(source: string) => Promise<MediaStreamTrack|null>} [opts.missingTrack]  a publish
   *   slot came for a source without a local track
   * @param {RTCIceServer[]} [opts.iceServers]  the last ones the server handed out (a rejoin)
   *
   * Offers wait for configure() (called on `joined`, which carries `iceServers`): the first offer
   * may arrive before `joined`, and ICE must gather with the servers' STUN/TURN.
   */
  constructor(opts) {
    this.opts = opts;
    this.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers: sanitizeIceServers(opts.iceServers) });
    this.configured = new Promise((resolve) => { this.markConfigured = resolve; });
    this.slots = {};        // mid -> slot of the latest offer
    this.subscribed = new Map(); // mid -> {mid, participant, source, kind, track}
    this.queue = Promise.resolve();
    this.closed = false;
    this.cameraLimit = null; // {maxBitrate, scaleResolutionDownBy} the server asked for (send-limits)
    this.cameraLayers = true; // ask for temporal layers until the browser refuses them once
    this.cameraWanted = true; // false: our camera reaches nobody, its encoder rests (camera-wanted)
    this.cameraPausable = true; // set encodings' `active` until the browser refuses it once
    this.pc.addEventListener('connectionstatechange', () => {
      if (this.pc.connectionState === 'failed' && !this.closed) {
        // ICE gave up (network change, NAT rebinding) while signalling is still up
        if (this.opts.onFailed) this.opts.onFailed();
        else this.opts.onError(new Error(t('call.mediaFailed')));
      }
    });
  }

  /** Queue a server offer; offers are processed strictly in order. */
  handleOffer(msg) {
    this.queue = this.queue
      .then(() => this.configured)
      .then(() => this.#applyOffer(msg))
      .catch((err) => { if (!this.closed) this.opts.onError(err); });
    return this.queue;
  }

  /** The ICE servers of `joined.iceServers` (STUN/TURN); lets queued offers through. */
  configure(iceServers) {
    const servers = sanitizeIceServers(iceServers);
    if (servers.length && !this.closed) {
      try {
        this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: servers });
      } catch (err) {
        this.opts.onError(new Error(t('call.iceRejected', { reason: err.message || err })));
      }
    }
    this.markConfigured();
  }

  /** Attach the current local track of `source` to its publish slot, if the server gave one. */
  async refreshPublish(source) {
    this.queue = this.queue.then(async () => {
      for (const t of this.pc.getTransceivers()) {
        const slot = t.mid != null ? this.slots[t.mid] : null;
        if (slot && slot.role === 'publish' && slot.source === source && !isStopped(t)) {
          await t.sender.replaceTrack(this.opts.localTrack(source));
        }
      }
    }).catch((err) => { if (!this.closed) this.opts.onError(err); });
    return this.queue;
  }

  /**
   * The server's cap for our camera (`send-limits.camera`, null: none): applied to the camera's
   * sender now and after every negotiation (encodings exist only once one is done).
   */
  setCameraLimit(limit) {
    this.cameraLimit = limit && Number.isFinite(limit.maxBitrate) && limit.maxBitrate > 0 ? limit : null;
    this.queue = this.queue.then(() => this.#applyCameraLimit())
      .catch((err) => { if (!this.closed) this.opts.onError(err); });
    return this.queue;
  }

  /**
   * Whether anyone receives our camera (`camera-wanted`): while nobody does, its encoder is
   * stopped (`active: false`: no frames, no uplink); started again, it begins with a keyframe.
   * The local preview is not affected.
   */
  setCameraWanted(wanted) {
    this.cameraWanted = wanted !== false;
    this.queue = this.queue.then(() => this.#applyCameraLimit())
      .catch((err) => { if (!this.closed) this.opts.onError(err); });
    return this.queue;
  }

  async #applyCameraLimit() {
    for (const t of this.pc.getTransceivers()) {
      const slot = t.mid != null ? this.slots[t.mid] : null;
      if (!slot || slot.role !== 'publish' || slot.source !== 'camera' || isStopped(t)) continue;
      try {
        await this.#setCameraParameters(t.sender);
      } catch (err) {
        if (!this.cameraPausable) throw err;
        // this browser cannot stop one encoding: it keeps sending (costs only its uplink), and
        // the cap and layers still apply — resting the camera is a saving, never an error
        this.cameraPausable = false;
        await this.#setCameraParameters(t.sender);
      }
    }
  }

  async #setCameraParameters(sender) {
    const layered = this.cameraLayers && isVp8(sender.getParameters());
    const params = this.#cameraParameters(sender, layered ? CAMERA_SCALABILITY : null);
    if (!params) return;
    try {
      await sender.setParameters(params);
    } catch (err) {
      if (!layered) throw err;
      // this browser cannot send the camera in temporal layers: one layer, every frame to everyone
      this.cameraLayers = false;
      await sender.setParameters(this.#cameraParameters(sender, null));
    }
  }

  // The camera sender's parameters with the server's cap and, if given, a scalability mode.
  #cameraParameters(sender, scalability) {
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) return null;
    const limit = this.cameraLimit;
    for (const enc of params.encodings) {
      if (limit) {
        enc.maxBitrate = limit.maxBitrate;
        enc.scaleResolutionDownBy = Math.max(1, Number(limit.scaleResolutionDownBy) || 1);
      } else {
        delete enc.maxBitrate;
        enc.scaleResolutionDownBy = 1;
      }
      if (scalability) enc.scalabilityMode = scalability;
      if (this.cameraPausable) enc.active = this.cameraWanted;
    }
    return params;
  }

  close() {
    this.closed = true;
    this.markConfigured(); // let queued offers drain (they stop at `closed`)
    for (const sub of this.subscribed.values()) this.opts.onUnsubscribe(sub);
    this.subscribed.clear();
    try { this.pc.close(); } catch { /* already closed */ }
  }

  async #applyOffer(msg) {
    if (this.closed) return;
    const tracks = msg.tracks || {};
    await this.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    if (this.closed) return;
    this.slots = tracks;

    for (const t of this.pc.getTransceivers()) {
      if (t.mid == null || isStopped(t)) continue;
      const slot = tracks[t.mid];
      if (!slot) continue;
      if (slot.role === 'publish') {
        let track = this.opts.localTrack(slot.source);
        if (!track && this.opts.missingTrack) {
          // e.g. promoted from viewer: the track is captured now that the server takes it
          track = await this.opts.missingTrack(slot.source);
          if (this.closed) return;
        }
        await t.sender.replaceTrack(track || null);
        t.direction = track ? 'sendonly' : 'inactive';
      } else if (slot.role === 'subscribe') {
        t.direction = 'recvonly';
      } else {
        t.direction = 'inactive';
      }
    }

    this.#reconcileSubscriptions(tracks);

    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    await this.#applyCameraLimit();
    await this.#iceGatheringComplete();
    if (this.closed) return;
    this.opts.sendAnswer({ type: 'answer', sdp: this.pc.localDescription.sdp });
  }

  // Bring the set of remote tracks in line with the subscribe slots of the latest offer.
  #reconcileSubscriptions(tracks) {
    const byMid = new Map();
    for (const t of this.pc.getTransceivers()) {
      if (t.mid != null && !isStopped(t)) byMid.set(t.mid, t);
    }
    for (const [mid, sub] of this.subscribed) {
      const slot = tracks[mid];
      const t = byMid.get(mid);
      if (!t || !slot || slot.role !== 'subscribe' || slot.participant !== sub.participant
          || slot.source !== sub.source || t.receiver.track !== sub.track) {
        this.subscribed.delete(mid);
        this.opts.onUnsubscribe(sub);
      }
    }
    for (const [mid, slot] of Object.entries(tracks)) {
      if (slot.role !== 'subscribe' || this.subscribed.has(mid)) continue;
      const t = byMid.get(mid);
      if (!t) continue;
      const sub = {
        mid,
        participant: slot.participant,
        source: slot.source,
        kind: slot.kind || t.receiver.track.kind,
        track: t.receiver.track,
      };
      this.subscribed.set(mid, sub);
      this.opts.onSubscribe(sub);
    }
  }

  #iceGatheringComplete() {
    const pc = this.pc;
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === 'complete') done(); };
      const timer = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }
}

/** Keep only well-formed RTCIceServer entries ({urls, username?, credential?}). */
export function sanitizeIceServers(list) {
  if (!Array.isArray(list)) return [];
  const out = [];
  for (const item of list) {
    if (!item || typeof item !== 'object') continue;
    const urls = (Array.isArray(item.urls) ? item.urls : [item.urls])
      .filter((u) => typeof u === 'string' && /^(stun|stuns|turn|turns):/.test(u));
    if (!urls.length) continue;
    const server = { urls };
    if (typeof item.username === 'string') server.username = item.username;
    if (typeof item.credential === 'string') server.credential = item.credential;
    out.push(server);
  }
  return out;
}

/** Whether a sender's negotiated codec is VP8 (the hub reads temporal layers of VP8 only). */
function isVp8(params) {
  const codec = params && params.codecs && params.codecs[0];
  return Boolean(codec && /^video\/vp8$/i.test(codec.mimeType));
}

function isStopped(t) {
  return t.stopped === true || t.currentDirection === 'stopped';
}
