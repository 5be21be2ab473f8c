// One browser phone leg's media (docs/browser-phone.md): the microphone, an RTCPeerConnection
// offering to Switchboard, the answer set back, the far end's audio played through an Audio
// object kept outside the DOM (so a page re-rendering around it never interrupts it), mute,
// DTMF and what getStats says. The adapter's phone (phone.js) and the portal's monitoring
// (portal/monitor.js) both carry their legs with it; signalling is the caller's own socket,
// handed in as `send`.

export class WebRtcLeg {
  /// `send(frame)` sends a phone frame; `onState(state)` hears `connected` or `failed`.
  constructor(leg, send, onState) {
    this.leg = leg;
    this.send = send;
    this.onState = onState;
    this.pc = null;
    this.stream = null;
    this.audio = null;
  }

  /// Answers the ringing leg: the microphone, an offer sent as `call_answer`; the server's
  /// answer comes back as `call_sdp` (hand it to `answered`).
  async answer() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    for (const track of this.stream.getAudioTracks()) pc.addTrack(track, this.stream);
    pc.ontrack = (event) => {
      this.audio = new Audio();
      this.audio.autoplay = true;
      this.audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      this.audio.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected' || pc.connectionState === 'failed') this.onState(pc.connectionState);
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.send({ type: 'call_answer', leg_id: this.leg, sdp: pc.localDescription.sdp });
  }

  /// The server's SDP answer (`call_sdp`).
  answered(sdp) {
    return this.pc ? this.pc.setRemoteDescription({ type: 'answer', sdp }) : Promise.resolve();
  }

  /// Sends silence (the track disabled) or the microphone again.
  mute(muted) {
    for (const track of this.stream?.getAudioTracks() || []) track.enabled = !muted;
  }

  /// DTMF to the far end, in the media as RFC 4733 telephone-events.
  dtmf(key) {
    const sender = this.pc?.getSenders().find((s) => s.track?.kind === 'audio');
    sender?.dtmf?.insertDTMF(key, 120, 70);
  }

  close() {
    this.pc?.close();
    for (const track of this.stream?.getTracks() || []) track.stop();
    if (this.audio) this.audio.srcObject = null;
    this.pc = null;
  }

  /// Packets sent and received, the audio level and energy heard, and the codec (getStats).
  async stats() {
    const result = { packetsSent: 0, packetsReceived: 0, audioLevel: 0, totalAudioEnergy: 0, codec: null };
    if (!this.pc) return result;
    const report = await this.pc.getStats();
    report.forEach((entry) => {
      if (entry.type === 'outbound-rtp' && entry.kind === 'audio') result.packetsSent += entry.packetsSent || 0;
      if (entry.type === 'inbound-rtp' && entry.kind === 'audio') {
        result.packetsReceived += entry.packetsReceived || 0;
        result.audioLevel = Math.max(result.audioLevel, entry.audioLevel || 0);
        result.totalAudioEnergy = entry.totalAudioEnergy || 0;
      }
      if (entry.type === 'codec' && entry.mimeType?.startsWith('audio/') && entry.mimeType !== 'audio/telephone-event') result.codec = entry.mimeType;
    });
    return result;
  }
}
