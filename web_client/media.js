// Local capture: camera/microphone with graceful degradation, and screen sharing.

import { t } from './i18n.js';

const VIDEO_CONSTRAINTS = {
  width: { ideal: 640 },
  height: { ideal: 360 },
  frameRate: { ideal: 24, max: 30 },
};

/**
 * Ask for what the user wants to publish. Never throws: a denied or missing device is reported
 * in `errors` (human-readable) and the call continues audio-only or as a listener.
 * @returns {Promise<{mic: MediaStreamTrack|null, camera: MediaStreamTrack|null, errors: string[]}>}
 */
export async function acquireUserMedia({ audio, video }) {
  const result = { mic: null, camera: null, errors: [] };
  if (!audio && !video) return result;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    result.errors.push(t('media.noAccess'));
    return result;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: audio || false,
      video: video ? VIDEO_CONSTRAINTS : false,
    });
    result.mic = stream.getAudioTracks()[0] || null;
    result.camera = stream.getVideoTracks()[0] || null;
    return result;
  } catch (err) {
    if (!(audio && video)) {
      result.errors.push(describe(video ? 'camera' : 'microphone', err));
      return result;
    }
  }
  // Both were requested and the combined request failed: find out which device is the problem.
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: VIDEO_CONSTRAINTS });
    result.camera = stream.getVideoTracks()[0] || null;
  } catch (err) {
    result.errors.push(describe('camera', err));
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    result.mic = stream.getAudioTracks()[0] || null;
  } catch (err) {
    result.errors.push(describe('microphone', err));
  }
  return result;
}

function describe(device, err) {
  const camera = device === 'camera';
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return camera ? t('media.cameraDenied') : t('media.micDenied');
    case 'NotFoundError':
    case 'OverconstrainedError':
      return camera ? t('media.noCameraFound') : t('media.noMicFound');
    case 'NotReadableError':
    case 'AbortError':
      return camera ? t('media.cameraBusy') : t('media.micBusy');
    default: {
      const reason = err && err.message ? err.message : String(err);
      return camera ? t('media.cameraFailed', { reason }) : t('media.micFailed', { reason });
    }
  }
}

export function canShareScreen() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
}

/** @returns {Promise<MediaStreamTrack>} the screen video track; throws with a human message. */
export async function acquireScreen() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 15, max: 30 } },
      audio: false,
    });
  } catch (err) {
    if (err && err.name === 'NotAllowedError') {
      throw new Error(t('media.screenCancelled'));
    }
    throw new Error(t('media.screenFailed', { reason: err && err.message ? err.message : String(err) }));
  }
  const track = stream.getVideoTracks()[0];
  if ('contentHint' in track) track.contentHint = 'detail';
  return track;
}
