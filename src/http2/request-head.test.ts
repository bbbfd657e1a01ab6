import { describe, expect, test } from "bun:test";
import { HttpError } from "../http1/errors.ts";
import {
  checkTrailers,
  type H2RequestHead,
  MalformedError,
  parseRequestHead,
} from "./request-head.ts";
import { prepareResponseFields } from "./response-fields.ts";

const BASE = [
  ":method",
  "GET",
  ":scheme",
  "https",
  ":path",
  "/a?b=c",
  ":authority",
  "example.com:8443",
];

const accepted: Array<[string, string[], Partial<H2RequestHead>]> = [
  [
    "a plain GET",
    BASE,
    {
      method: "GET",
      scheme: "https",
      path: "/a?b=c",
      authority: "example.com:8443",
      headers: [],
      contentLength: -1,
    },
  ],
  [
    "pseudo-headers in any order",
    [":path", "/", ":authority", "a", ":scheme", "http", ":method", "HEAD"],
    { method: "HEAD", path: "/" },
  ],
  [
    "regular headers kept in order with duplicates",
    [...BASE, "accept", "a", "x-y", "1", "accept", "b"],
    { headers: ["accept", "a", "x-y", "1", "accept", "b"] },
  ],
  [
    "content-length parsed",
    [...BASE, "content-length", "0012"],
    { contentLength: 12, headers: ["content-length", "0012"] },
  ],
  [
    "cookie fields joined with '; ' at the first one's place (§8.2.3)",
    [...BASE, "cookie", "a=1", "x", "y", "cookie", "b=2", "cookie", "c=3"],
    { headers: ["cookie", "a=1; b=2; c=3", "x", "y"] },
  ],
  ["TE: trailers allowed (§8.2.2)", [...BASE, "te", "trailers"], { headers: ["te", "trailers"] }],
  [
    "host equal to :authority (any case)",
    [...BASE, "host", "EXAMPLE.com:8443"],
    { authority: "example.com:8443" },
  ],
  [
    "host used when :authority is absent",
    [":method", "GET", ":scheme", "https", ":path", "/", "host", "h"],
    { authority: "h" },
  ],
  [
    "OPTIONS *",
    [":method", "OPTIONS", ":scheme", "https", ":path", "*", ":authority", "a"],
    { path: "*" },
  ],
  [
    "CONNECT with :authority only (§8.5)",
    [":method", "CONNECT", ":authority", "proxy.test:443"],
    { method: "CONNECT", scheme: "", path: "", authority: "proxy.test:443" },
  ],
  [
    "a non-http scheme without authority",
    [":method", "GET", ":scheme", "foo+bar", ":path", "/"],
    { scheme: "foo+bar", authority: "" },
  ],
  ["an extension method", [...BASE.slice(2), ":method", "PURGE"], { method: "PURGE" }],
  [
    "obs-text and inner whitespace in values",
    [...BASE, "x", "caf\xe9 \tau lait"],
    { headers: ["x", "caf\xe9 \tau lait"] },
  ],
  ["an empty value", [...BASE, "x", ""], { headers: ["x", ""] }],
];

const refused: Array<[string, string[]]> = [
  ["no :method", BASE.slice(2)],
  ["no :scheme", [":method", "GET", ":path", "/", ":authority", "a"]],
  ["no :path", [":method", "GET", ":scheme", "https", ":authority", "a"]],
  ["an empty :path", [":method", "GET", ":scheme", "https", ":path", "", ":authority", "a"]],
  [
    "a :path not starting with /",
    [":method", "GET", ":scheme", "https", ":path", "a/b", ":authority", "a"],
  ],
  [
    "a :path with a space",
    [":method", "GET", ":scheme", "https", ":path", "/a b", ":authority", "a"],
  ],
  [
    "a :path with a fragment",
    [":method", "GET", ":scheme", "https", ":path", "/a#b", ":authority", "a"],
  ],
  ["* with GET", [":method", "GET", ":scheme", "https", ":path", "*", ":authority", "a"]],
  [
    "a repeated :method",
    [...BASE, ":method", "GET"].slice(0, 2).concat(BASE.slice(0, 2), BASE.slice(2)),
  ],
  ["a repeated :path", [":path", "/", ...BASE]],
  ["a repeated :authority", [":authority", "a", ...BASE]],
  ["a repeated :scheme", [":scheme", "http", ...BASE]],
  ["an unknown pseudo-header", [...BASE, ":foo", "x"].slice(0, 8).concat([":foo", "x"])],
  [":status in a request", [":status", "200", ...BASE]],
  [":protocol without extended CONNECT", [":protocol", "websocket", ...BASE]],
  [
    "a pseudo-header after a regular one",
    [":method", "GET", "x", "1", ":scheme", "https", ":path", "/", ":authority", "a"],
  ],
  [
    "a method that is not a token",
    [":method", "G T", ":scheme", "https", ":path", "/", ":authority", "a"],
  ],
  ["an empty method", [":method", "", ":scheme", "https", ":path", "/", ":authority", "a"]],
  ["an invalid scheme", [":method", "GET", ":scheme", "1http", ":path", "/", ":authority", "a"]],
  [
    "userinfo in :authority",
    [":method", "GET", ":scheme", "https", ":path", "/", ":authority", "u@a"],
  ],
  ["an empty :authority", [":method", "GET", ":scheme", "https", ":path", "/", ":authority", ""]],
  ["no authority at all with https", [":method", "GET", ":scheme", "https", ":path", "/"]],
  ["a host differing from :authority", [...BASE, "host", "other"]],
  [
    "two host headers",
    [":method", "GET", ":scheme", "https", ":path", "/", "host", "a", "host", "a"],
  ],
  ["an invalid host", [":method", "GET", ":scheme", "https", ":path", "/", "host", "a b"]],
  ["CONNECT with :path", [":method", "CONNECT", ":authority", "a:1", ":path", "/"]],
  ["CONNECT without :authority", [":method", "CONNECT"]],
  ["an uppercase name (§8.2.1)", [...BASE, "Accept", "x"]],
  ["an empty name", [...BASE, "", "x"]],
  ["a name with a space", [...BASE, "a b", "x"]],
  ["a name with a colon", [...BASE, "a:b", "x"]],
  ["a value with CR", [...BASE, "x", "a\rb"]],
  ["a value with LF", [...BASE, "x", "a\nb"]],
  ["a value with NUL", [...BASE, "x", "a\0b"]],
  ["a value with DEL", [...BASE, "x", "a\x7fb"]],
  ["a value with a leading space", [...BASE, "x", " a"]],
  ["a value with a trailing tab", [...BASE, "x", "a\t"]],
  ["connection (§8.2.2)", [...BASE, "connection", "close"]],
  ["keep-alive (§8.2.2)", [...BASE, "keep-alive", "1"]],
  ["proxy-connection (§8.2.2)", [...BASE, "proxy-connection", "1"]],
  ["transfer-encoding (§8.2.2)", [...BASE, "transfer-encoding", "chunked"]],
  ["upgrade (§8.2.2)", [...BASE, "upgrade", "h2c"]],
  ["TE other than trailers (§8.2.2)", [...BASE, "te", "trailers, deflate"]],
  ["a non-numeric content-length", [...BASE, "content-length", "1a"]],
  ["a negative content-length", [...BASE, "content-length", "-1"]],
  ["an empty content-length", [...BASE, "content-length", ""]],
  ["a 16-digit content-length", [...BASE, "content-length", "1234567890123456"]],
  ["a repeated content-length", [...BASE, "content-length", "1", "content-length", "1"]],
];

describe("parseRequestHead (RFC 9113 §8.3.1, §8.2)", () => {
  for (const [name, fields, expected] of accepted) {
    test(`accepts ${name}`, () => {
      expect(parseRequestHead(fields)).toMatchObject(expected);
    });
  }
  for (const [name, fields] of refused) {
    test(`refuses ${name}`, () => {
      expect(() => parseRequestHead(fields)).toThrow(MalformedError);
    });
  }
});

describe("checkTrailers (§8.1)", () => {
  test("accepts regular fields", () => {
    expect(checkTrailers(["x-sum", "1", "x-sum", "2"])).toEqual(["x-sum", "1", "x-sum", "2"]);
  });
  for (const [name, fields] of [
    ["a pseudo-header", [":path", "/"]],
    ["an uppercase name", ["X", "1"]],
    ["a connection-specific field", ["connection", "close"]],
    ["a value with LF", ["x", "a\nb"]],
  ] as Array<[string, string[]]>) {
    test(`refuses ${name}`, () => {
      expect(() => checkTrailers(fields)).toThrow(MalformedError);
    });
  }
});

describe("prepareResponseFields", () => {
  test("lowercases names, drops connection-specific fields, trims values", () => {
    expect(
      prepareResponseFields([
        "Content-Type",
        "text/html",
        "Connection",
        "keep-alive",
        "Transfer-Encoding",
        "chunked",
        "X-Pad",
        " \tv a l\t ",
        "Set-Cookie",
        "a=1",
        "Set-Cookie",
        "b=2",
      ]),
    ).toEqual([
      "content-type",
      "text/html",
      "x-pad",
      "v a l",
      "set-cookie",
      "a=1",
      "set-cookie",
      "b=2",
    ]);
  });

  for (const [name, fields] of [
    ["an odd list", ["x"]],
    ["an empty name", ["", "x"]],
    ["a name with a space", ["a b", "x"]],
    ["a pseudo-header", [":status", "200"]],
    ["a value with CR LF", ["x", "a\r\nb"]],
    ["a value with NUL", ["x", "\0"]],
    ["a value with a char above 0xFF", ["x", "\u20ac"]],
  ] as Array<[string, string[]]>) {
    test(`refuses ${name} with BAD_RESPONSE_HEADER`, () => {
      let err: unknown;
      try {
        prepareResponseFields(fields);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HttpError);
      expect((err as HttpError).code).toBe("BAD_RESPONSE_HEADER");
    });
  }
});
