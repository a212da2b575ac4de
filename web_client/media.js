// Local capture: camera/microphone with graceful degradation, and screen sharing.

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
    result.errors.push('This browser cannot access the camera or microphone here '
      + '(the page must be served over HTTPS) — you joined as a listener.');
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
  const Device = device === 'camera' ? 'Camera' : 'Microphone';
  const fallback = device === 'camera' ? 'continuing without video' : 'continuing without audio';
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `${Device} access was denied — ${fallback}. Allow it in the browser's site settings and rejoin to publish.`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `No ${device} was found — ${fallback}.`;
    case 'NotReadableError':
    case 'AbortError':
      return `The ${device} is in use by another application or could not be started — ${fallback}.`;
    default:
      return `Could not start the ${device} (${err && err.message ? err.message : err}) — ${fallback}.`;
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
      throw new Error('Screen sharing was cancelled or is not allowed.');
    }
    throw new Error(`Could not share the screen (${err && err.message ? err.message : err}).`);
  }
  const track = stream.getVideoTracks()[0];
  if ('contentHint' in track) track.contentHint = 'detail';
  return track;
}
