import { describe, expect, test } from "bun:test";
import {
  acceptKey,
  checkUpgrade,
  type DeflateParams,
  isWebSocketUpgrade,
  negotiateDeflate,
  parseExtensions,
  serializeHandshake,
  type UpgradeResult,
} from "./handshake.ts";

const KEY = "dGhlIHNhbXBsZSBub25jZQ=="; // RFC 6455 §1.3 / §4.2.2
const NO_TAKEOVER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/** The headers of a valid handshake request, with `extra` appended and `drop` names removed. */
function request(extra: string[] = [], drop: string[] = []): string[] {
  const base = [
    "Host",
    "example.com",
    "Upgrade",
    "websocket",
    "Connection",
    "Upgrade",
    "Sec-WebSocket-Key",
    KEY,
    "Sec-WebSocket-Version",
    "13",
  ];
  const out: string[] = [];
  for (let i = 0; i < base.length; i += 2) {
    if (!drop.includes((base[i] as string).toLowerCase()))
      out.push(base[i] as string, base[i + 1] as string);
  }
  return [...out, ...extra];
}

describe("acceptKey", () => {
  test("computes the RFC 6455 §1.3 example", () => {
    expect(acceptKey(KEY)).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });
});

describe("isWebSocketUpgrade", () => {
  const cases: Array<[string, string[], boolean]> = [
    ["a plain Upgrade: websocket", ["Upgrade", "websocket"], true],
    ["any case", ["UPGRADE", "WebSocket"], true],
    ["websocket in a list", ["upgrade", "h2c, websocket"], true],
    ["websocket in a second Upgrade header", ["Upgrade", "h2c", "Upgrade", " websocket "], true],
    ["no Upgrade header", ["Connection", "upgrade"], false],
    ["another protocol", ["Upgrade", "h2c"], false],
    ["websocket as a substring", ["Upgrade", "websockets"], false],
  ];
  for (const [name, headers, expected] of cases) {
    test(`${name}: ${expected}`, () => {
      expect(isWebSocketUpgrade("GET", headers)).toBe(expected);
    });
  }
});

describe("checkUpgrade", () => {
  type Want = { ok: true; subprotocols?: string[]; deflate?: string | null } | { status: number };
  const cases: Array<[string, string, string, string[], Want]> = [
    [
      "a valid request is accepted",
      "GET",
      "1.1",
      request(),
      { ok: true, subprotocols: [], deflate: null },
    ],
    ["the version may be given as HTTP/1.1", "GET", "HTTP/1.1", request(), { ok: true }],
    [
      "Connection may be a list in any case",
      "GET",
      "1.1",
      request(["Connection", "keep-alive, UPGRADE"], ["connection"]),
      { ok: true },
    ],
    [
      "Connection may be split over several headers",
      "GET",
      "1.1",
      request(["Connection", "keep-alive", "Connection", "upgrade"], ["connection"]),
      { ok: true },
    ],
    [
      "subprotocols are collected in order from all headers",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Protocol", "chat, , superchat ", "sec-websocket-protocol", "v2.x"]),
      { ok: true, subprotocols: ["chat", "superchat", "v2.x"] },
    ],
    [
      "a deflate offer is negotiated",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"]),
      { ok: true, deflate: NO_TAKEOVER },
    ],
    ["POST is refused", "POST", "1.1", request(), { status: 400 }],
    ["HEAD is refused", "HEAD", "1.1", request(), { status: 400 }],
    ["HTTP/1.0 is refused", "GET", "1.0", request(), { status: 400 }],
    ["a missing Host is refused", "GET", "1.1", request([], ["host"]), { status: 400 }],
    ["a missing Upgrade is refused", "GET", "1.1", request([], ["upgrade"]), { status: 400 }],
    [
      "Upgrade without websocket is refused",
      "GET",
      "1.1",
      request(["Upgrade", "h2c"], ["upgrade"]),
      { status: 400 },
    ],
    ["a missing Connection is refused", "GET", "1.1", request([], ["connection"]), { status: 400 }],
    [
      "Connection without upgrade is refused",
      "GET",
      "1.1",
      request(["Connection", "keep-alive"], ["connection"]),
      { status: 400 },
    ],
    ["a missing key is refused", "GET", "1.1", request([], ["sec-websocket-key"]), { status: 400 }],
    [
      "a repeated key is refused",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Key", KEY]),
      { status: 400 },
    ],
    [
      "a key of 15 bytes is refused",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"], ["sec-websocket-key"]),
      { status: 400 },
    ],
    [
      "a key of 17 bytes is refused",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="], ["sec-websocket-key"]),
      { status: 400 },
    ],
    [
      "a key that is not base64 is refused",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ!="], ["sec-websocket-key"]),
      { status: 400 },
    ],
    [
      "a key without padding is refused",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ"], ["sec-websocket-key"]),
      { status: 400 },
    ],
    [
      "a missing version gets 426",
      "GET",
      "1.1",
      request([], ["sec-websocket-version"]),
      { status: 426 },
    ],
    [
      "version 8 gets 426",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Version", "8"], ["sec-websocket-version"]),
      { status: 426 },
    ],
    [
      "a version list gets 426",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Version", "13, 8"], ["sec-websocket-version"]),
      { status: 426 },
    ],
    [
      "a repeated version gets 426",
      "GET",
      "1.1",
      request(["Sec-WebSocket-Version", "13"]),
      { status: 426 },
    ],
  ];
  for (const [name, method, version, headers, want] of cases) {
    test(name, () => {
      const result: UpgradeResult = checkUpgrade(method, version, headers);
      if ("ok" in want) {
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        expect(result.key).toBe(KEY);
        if (want.subprotocols !== undefined) expect(result.subprotocols).toEqual(want.subprotocols);
        if (want.deflate !== undefined)
          expect(result.deflate?.responseHeader ?? null).toBe(want.deflate);
      } else {
        expect(result.ok).toBe(false);
        if (result.ok) return;
        expect(result.status).toBe(want.status);
        expect(result.reason.length).toBeGreaterThan(0);
        if (want.status === 426) {
          // §4.4: the versions we speak; RFC 9110 §15.5.22: a 426 carries Upgrade.
          expect(result.headers).toEqual([
            "sec-websocket-version",
            "13",
            "upgrade",
            "websocket",
            "connection",
            "upgrade",
          ]);
        } else {
          expect(result.headers).toEqual([]);
        }
      }
    });
  }
});

describe("parseExtensions (RFC 6455 §9.1)", () => {
  const cases: Array<[string, string, ReturnType<typeof parseExtensions>]> = [
    ["a bare extension", "permessage-deflate", [{ name: "permessage-deflate", params: [] }]],
    [
      "parameters with and without values, OWS around separators",
      "permessage-deflate ;client_max_window_bits ; server_max_window_bits = 10",
      [
        {
          name: "permessage-deflate",
          params: [
            ["client_max_window_bits", null],
            ["server_max_window_bits", "10"],
          ],
        },
      ],
    ],
    [
      "several extensions and empty list elements",
      " , foo, bar; x=1 ,, baz",
      [
        { name: "foo", params: [] },
        { name: "bar", params: [["x", "1"]] },
        { name: "baz", params: [] },
      ],
    ],
    ["a quoted value", 'a; b="10"', [{ name: "a", params: [["b", "10"]] }]],
    ["a quoted value with a quoted-pair", 'a; b="1\\0"', [{ name: "a", params: [["b", "10"]] }]],
    ["a quoted value that is not a token", 'a; b="1 0", c', [null, { name: "c", params: [] }]],
    ["a quoted comma does not split the list", 'a; b="x,y", c', [null, { name: "c", params: [] }]],
    ["an unterminated quote", 'a; b="10', [null]],
    ["a missing parameter name", "a; =1, b", [null, { name: "b", params: [] }]],
    ["a missing value after =", "a; b=, c", [null, { name: "c", params: [] }]],
    ["junk after the name", "a b, c", [null, { name: "c", params: [] }]],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => {
      expect(parseExtensions(input)).toEqual(expected);
    });
  }
});

describe("negotiateDeflate (RFC 7692 §5, §7.1)", () => {
  type Want = { server: number; client: number; header: string } | null;
  const accepted = (server = 15, client = 15, header = NO_TAKEOVER): Want => ({
    server,
    client,
    header,
  });
  const cases: Array<[string, string[], Want]> = [
    ["no extension header: no deflate", [], null],
    [
      "a bare offer is accepted with both no_context_takeover added",
      ["permessage-deflate"],
      accepted(),
    ],
    [
      "the browser offer (client_max_window_bits without value)",
      ["permessage-deflate; client_max_window_bits"],
      accepted(),
    ],
    [
      "offered no_context_takeover parameters are answered the same",
      ["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
      accepted(),
    ],
    [
      "server_max_window_bits is echoed and used",
      ["permessage-deflate; server_max_window_bits=10"],
      accepted(10, 15, `${NO_TAKEOVER}; server_max_window_bits=10`),
    ],
    [
      "server_max_window_bits=8 is accepted (compressed with zlib's 9)",
      ["permessage-deflate; server_max_window_bits=8"],
      accepted(8, 15, `${NO_TAKEOVER}; server_max_window_bits=8`),
    ],
    [
      "a quoted window value is read",
      ['permessage-deflate; server_max_window_bits="12"'],
      accepted(12, 15, `${NO_TAKEOVER}; server_max_window_bits=12`),
    ],
    [
      "client_max_window_bits with a value is remembered, not answered",
      ["permessage-deflate; client_max_window_bits=9"],
      accepted(15, 9),
    ],
    [
      "names are case-insensitive",
      ["Permessage-Deflate; Server_Max_Window_Bits=11"],
      accepted(11, 15, `${NO_TAKEOVER}; server_max_window_bits=11`),
    ],
    ["other extensions are skipped", ["x-webkit-deflate-frame, permessage-deflate"], accepted()],
    ["an unknown parameter declines the offer", ["permessage-deflate; foo"], null],
    [
      "a duplicate parameter declines the offer",
      ["permessage-deflate; client_no_context_takeover; client_no_context_takeover"],
      null,
    ],
    [
      "a valued server_no_context_takeover declines the offer",
      ["permessage-deflate; server_no_context_takeover=1"],
      null,
    ],
    [
      "a valueless server_max_window_bits declines the offer",
      ["permessage-deflate; server_max_window_bits"],
      null,
    ],
    [
      "server_max_window_bits=7 declines the offer",
      ["permessage-deflate; server_max_window_bits=7"],
      null,
    ],
    [
      "server_max_window_bits=16 declines the offer",
      ["permessage-deflate; server_max_window_bits=16"],
      null,
    ],
    ["a leading zero declines the offer", ["permessage-deflate; server_max_window_bits=09"], null],
    [
      "client_max_window_bits=0 declines the offer",
      ["permessage-deflate; client_max_window_bits=0"],
      null,
    ],
    [
      "the first acceptable of several offers in one header wins",
      [
        "permessage-deflate; server_max_window_bits=20, permessage-deflate; server_max_window_bits=12, permessage-deflate",
      ],
      accepted(12, 15, `${NO_TAKEOVER}; server_max_window_bits=12`),
    ],
    [
      "offers across several headers are taken in order",
      ["permessage-deflate; bogus", "permessage-deflate; client_max_window_bits=10"],
      accepted(15, 10),
    ],
    [
      "a malformed offer is declined and the next one considered",
      ['permessage-deflate; x="a b", permessage-deflate'],
      accepted(),
    ],
    ["all offers declined: no deflate", ["permessage-deflate; a", "permessage-deflate; b=1"], null],
  ];
  for (const [name, values, want] of cases) {
    test(name, () => {
      const headers: string[] = [];
      for (const v of values) headers.push("Sec-WebSocket-Extensions", v);
      const got = negotiateDeflate(["Host", "x", ...headers]);
      if (want === null) {
        expect(got).toBeNull();
      } else {
        expect(got).toEqual({
          serverMaxWindowBits: want.server,
          clientMaxWindowBits: want.client,
          responseHeader: want.header,
        });
      }
    });
  }
});

describe("serializeHandshake (RFC 6455 §4.2.2)", () => {
  const deflate: DeflateParams = {
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
    responseHeader: NO_TAKEOVER,
  };

  test("writes the 101 head with the accept key", () => {
    expect(serializeHandshake(KEY, null, null, [])).toBe(
      "HTTP/1.1 101 Switching Protocols\r\n" +
        "upgrade: websocket\r\n" +
        "connection: Upgrade\r\n" +
        "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
        "\r\n",
    );
  });

  test("adds the subprotocol, the extensions and extra headers in order", () => {
    expect(serializeHandshake(KEY, "chat", deflate, ["set-cookie", "a=1", "X-Thing", "v"])).toBe(
      "HTTP/1.1 101 Switching Protocols\r\n" +
        "upgrade: websocket\r\n" +
        "connection: Upgrade\r\n" +
        "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
        "sec-websocket-protocol: chat\r\n" +
        `sec-websocket-extensions: ${NO_TAKEOVER}\r\n` +
        "set-cookie: a=1\r\n" +
        "X-Thing: v\r\n" +
        "\r\n",
    );
  });

  test("skips extra headers the server sets itself, in any case", () => {
    const head = serializeHandshake(KEY, null, null, [
      "Upgrade",
      "h2c",
      "CONNECTION",
      "close",
      "Sec-WebSocket-Accept",
      "forged",
      "sec-websocket-protocol",
      "other",
      "Sec-WebSocket-Extensions",
      "x",
      "Content-Length",
      "5",
      "Transfer-Encoding",
      "chunked",
      "x-kept",
      "yes",
    ]);
    expect(head).toBe(
      "HTTP/1.1 101 Switching Protocols\r\n" +
        "upgrade: websocket\r\n" +
        "connection: Upgrade\r\n" +
        "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
        "x-kept: yes\r\n" +
        "\r\n",
    );
  });

  test("throws rather than emit CR or LF", () => {
    expect(() => serializeHandshake(KEY, "a\r\nx: y", null, [])).toThrow(RangeError);
    expect(() => serializeHandshake(KEY, null, null, ["x", "a\nb"])).toThrow(RangeError);
    expect(() => serializeHandshake(KEY, null, null, ["x\r", "v"])).toThrow(RangeError);
    expect(() => serializeHandshake(KEY, null, null, ["x"])).toThrow(RangeError);
  });

  test("checkUpgrade's result feeds serializeHandshake end to end", () => {
    const r = checkUpgrade(
      "GET",
      "1.1",
      request(["Sec-WebSocket-Protocol", "chat", "Sec-WebSocket-Extensions", "permessage-deflate"]),
    );
    if (!r.ok) throw new Error("expected acceptance");
    const head = serializeHandshake(r.key, r.subprotocols[0] ?? null, r.deflate, []);
    expect(head).toContain("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
    expect(head).toContain(`sec-websocket-extensions: ${NO_TAKEOVER}\r\n`);
    expect(head.endsWith("\r\n\r\n")).toBe(true);
  });
});
