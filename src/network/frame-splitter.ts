/**
 * FrameSplitter: cuts a link's byte stream into whole frames by their length word, before anything
 * else reads them. A length outside [header, MAX_FRAME_BYTES] is hostile or broken input, and the
 * link is closed: nothing makes a node buffer more than one largest frame per link.
 */
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from '../replication/frames.js';

export type SplitFault = 'FrameTooLarge' | 'FrameTooSmall';

export class FrameSplitter {
  /**
   * Pieces of an incomplete frame carried over from earlier chunks, and how many bytes must be
   * held before it can be whole (a large frame arriving in many chunks is joined once, not per chunk).
   */
  private parts: Buffer[] = [];
  private partBytes = 0;
  private needed = 0;

  /**
   * Feeds a chunk; calls `onFrame` for every whole frame (a view, valid during the call) and
   * returns undefined, or the fault that ends the link (frames before it were delivered).
   */
  push(chunk: Buffer, onFrame: (frame: Uint8Array) => void): SplitFault | undefined {
    let data = chunk;
    if (this.partBytes > 0) {
      this.parts.push(chunk);
      this.partBytes += chunk.length;
      if (this.partBytes < this.needed) return undefined;
      data = Buffer.concat(this.parts, this.partBytes);
      this.parts = [];
      this.partBytes = 0;
    }
    let at = 0;
    while (data.length - at >= 4) {
      const length = data.readUInt32LE(at);
      if (length > MAX_FRAME_BYTES) return 'FrameTooLarge';
      if (length < FRAME_HEADER_BYTES) return 'FrameTooSmall';
      if (data.length - at < length) break;
      onFrame(data.subarray(at, at + length));
      at += length;
    }
    if (at < data.length) {
      // Copied, not kept as a view: a view would pin the whole chunk (up to 64 KiB) for a few bytes.
      const rest = Buffer.from(data.subarray(at));
      this.parts = [rest];
      this.partBytes = rest.length;
      this.needed = rest.length >= 4 ? rest.readUInt32LE(0) : 4;
    }
    return undefined;
  }

  /** Bytes held waiting for the rest of a frame. */
  get heldBytes(): number {
    return this.partBytes;
  }
}
