// Fakes of what the SDK uses from a browser, for the unit tests: a clock
// with timers that run only when the test moves time on, Web Locks and a
// BroadcastChannel shared by the tabs of one fake browser, a key store, a
// localStorage, and a small fake sessiond behind fetch. The SDK's own logic
// runs for real on top of them.

import { createClient } from '../../src/sessiond-browser.js'

// flush lets every pending promise, channel message and WebCrypto
// operation (which runs off the main thread) finish.
export async function flush() {
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 10; j++) await new Promise((r) => setImmediate(r))
    await new Promise((r) => setTimeout(r, 2))
  }
}

export class Clock {
  constructor(t = 1_700_000_000_000) {
    this.t = t
    this.timers = new Map()
    this.seq = 0
  }
  now = () => this.t
  setTimeout = (f, ms) => {
    const id = ++this.seq
    this.timers.set(id, { at: this.t + Math.max(0, ms || 0), f })
    return id
  }
  clearTimeout = (id) => { this.timers.delete(id) }
  // advance moves time on by ms, running each timer at its time.
  async advance(ms) {
    const end = this.t + ms
    await flush()
    for (;;) {
      let next = null
      for (const [id, tm] of this.timers) if (tm.at <= end && (!next || tm.at < next[1].at)) next = [id, tm]
      if (!next) break
      this.timers.delete(next[0])
      this.t = Math.max(this.t, next[1].at)
      next[1].f()
      await flush()
    }
    this.t = end
    await flush()
  }
}

// Locks is navigator.locks for one browser: exclusive, first come first served.
export class Locks {
  constructor() { this.queues = new Map() }
  request(name, f) {
    const prev = this.queues.get(name) || Promise.resolve()
    const run = prev.then(() => f({ name }))
    this.queues.set(name, run.catch(() => {}))
    return run
  }
}

// Hub is the BroadcastChannel of one browser. drop(m) may swallow a message.
export class Hub {
  constructor() {
    this.channels = new Set()
    this.drop = () => false
    this.log = []
    const hub = this
    this.BroadcastChannel = class {
      constructor(name) { this.name = name; this.onmessage = null; hub.channels.add(this) }
      postMessage(m) {
        const data = structuredClone(m)
        hub.log.push(data)
        if (hub.drop(data)) return
        for (const c of hub.channels) {
          if (c !== this && c.name === this.name) setImmediate(() => c.onmessage && c.onmessage({ data }))
        }
      }
      close() { hub.channels.delete(this) }
    }
  }
}

export class MemoryStorage {
  constructor() { this.m = new Map(); this.log = [] }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null }
  setItem(k, v) { this.log.push([k, String(v)]); this.m.set(k, String(v)) }
  removeItem(k) { this.m.delete(k) }
}

export class MemoryKeyStore {
  constructor() { this.pair = null }
  async get() { return this.pair }
  async set(p) { this.pair = p }
  async delete() { this.pair = null }
}

const problem = (status, code, headers = {}) => new Response(JSON.stringify({ status, code, detail: code }), {
  status, headers: { 'Content-Type': 'application/problem+json', ...headers },
})
const json = (status, body, headers = {}) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } })

// Server is a fake sessiond at https://auth.test (and a third-party API at
// https://api.test): enough of login, refresh, logout and one Bearer
// endpoint to drive the client. Tests change its behaviour through fields.
export class Server {
  constructor(clock) {
    this.clock = clock
    this.requests = [] // every Request, as sent
    this.refreshes = 0
    this.n = 0
    this.ttl = 100 // expires_in, seconds
    this.live = true
    this.current = '' // the AT the server accepts
    this.refreshAnswer = null // () => Response, instead of a token
    this.mfa = false
    this.nonce = '' // when set, proofs must carry it
    this.override = null // (req) => a Response to answer instead, or nothing
    this.fetch = this.fetch.bind(this)
  }
  tokens(dpop) {
    this.current = 'at-' + ++this.n
    return json(200, { access_token: this.current, token_type: dpop ? 'DPoP' : 'Bearer', expires_in: this.ttl, session_id: 'sid-1', refresh_expires_in: 3600 })
  }
  async fetch(input, init) {
    const req = new Request(input, init)
    this.requests.push(req.clone()) // the tests may read the body too
    if (this.override) {
      const r = await this.override(req.clone())
      if (r) return r
    }
    const u = new URL(req.url)
    const dpop = req.headers.get('DPoP')
    if (this.nonce && dpop) {
      const claims = JSON.parse(Buffer.from(dpop.split('.')[1], 'base64url'))
      if (claims.nonce !== this.nonce) return problem(401, 'use_dpop_nonce', { 'DPoP-Nonce': this.nonce })
    }
    if (u.origin === 'https://api.test') {
      const auth = req.headers.get('Authorization') || ''
      if (auth.split(' ')[1] !== this.current) return problem(401, 'invalid_token', { 'WWW-Authenticate': 'Bearer error="invalid_token"' })
      return json(200, { ok: true, auth })
    }
    switch (u.pathname) {
      case '/v1/login': {
        const body = await req.json()
        if (this.mfa) return new Response(JSON.stringify({ status: 403, code: 'mfa_required', mfa_token: 'mfa-1', methods: ['totp', 'recovery_code'] }), { status: 403 })
        if (body.password !== 'pw') return problem(401, 'invalid_credentials')
        this.live = true
        return this.tokens(!!dpop)
      }
      case '/v1/login/mfa':
        this.live = true
        return this.tokens(!!dpop)
      case '/v1/refresh':
        this.refreshes++
        if (this.refreshAnswer) return this.refreshAnswer(req)
        if (!this.live) return problem(401, 'invalid_refresh_token')
        return this.tokens(!!dpop)
      case '/v1/logout':
        this.live = false
        return new Response(null, { status: 204 })
      case '/v1/me': {
        const auth = req.headers.get('Authorization') || ''
        if (!this.live || auth.split(' ')[1] !== this.current) return problem(401, 'invalid_token', { 'WWW-Authenticate': 'Bearer error="invalid_token"' })
        return json(200, { user_id: 'u1', email: 'ada@example.com', session_id: 'sid-1' })
      }
      case '/v1/password': {
        const body = await req.json()
        if (body.current_password !== 'pw') return problem(401, 'invalid_credentials')
        return new Response(null, { status: 204 })
      }
    }
    return problem(404, 'not_found')
  }
  refreshRequests() { return this.requests.filter((r) => new URL(r.url).pathname === '/v1/refresh') }
}

// Browser is one browser profile: tabs share its locks, channel, storage,
// key store and cookie (the fake server's single session). Its sessions are
// DPoP-bound only with dpop: WebCrypto's operations finish on another
// thread, at times no fake clock controls, so the timing tests leave them out.
export class Browser {
  constructor({ clock = new Clock(), server, locks = true, channel = true, crypto = true, dpop = false } = {}) {
    this.clock = clock
    this.server = server || new Server(clock)
    this.locks = locks ? new Locks() : null
    this.hub = new Hub()
    this.channel = channel
    this.storage = new MemoryStorage()
    this.keyStore = crypto && dpop ? new MemoryKeyStore() : null
    this.crypto = crypto
    this.tabs = []
  }
  tab(options = {}) {
    const events = []
    const c = createClient({
      baseUrl: 'https://auth.test',
      tokenOrigins: ['https://api.test'],
      ...options,
      env: {
        fetch: this.server.fetch,
        locks: this.locks,
        BroadcastChannel: this.channel ? this.hub.BroadcastChannel : null,
        localStorage: this.storage,
        crypto: this.crypto ? globalThis.crypto : { getRandomValues: (a) => globalThis.crypto.getRandomValues(a) },
        keyStore: this.keyStore,
        now: this.clock.now,
        setTimeout: this.clock.setTimeout,
        clearTimeout: this.clock.clearTimeout,
        random: () => 1,
        ...options.env,
      },
    })
    c.onChange((e) => events.push(e))
    c.events = events
    this.tabs.push(c)
    return c
  }
  close() { for (const t of this.tabs) t.close() }
}
