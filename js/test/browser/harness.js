// What the browser tests share: a real sessiond (the binary SESSIOND_BIN,
// on its own port and temporary SQLite database, restartable on both),
// headless Chromium through playwright-core, and a test page on sessiond's
// origin that loads the SDK from js/src and nothing else.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const sdkSource = readFileSync(join(here, '..', '..', 'src', 'sessiond-browser.js'))
export const CHROMIUM = '/usr/bin/chromium'
export const PASSWORD = 'correct horse battery staple'

// skipReason says why the browser tests cannot run here, or '' when they can.
export async function skipReason() {
  if (!process.env.SESSIOND_BIN) return 'SESSIOND_BIN is not set (./test.sh builds sessiond and sets it)'
  if (!existsSync(process.env.SESSIOND_BIN)) return 'SESSIOND_BIN ' + process.env.SESSIOND_BIN + ' does not exist'
  if (!existsSync(CHROMIUM)) return CHROMIUM + ' is missing (apt-get install -y chromium)'
  try {
    await import('playwright-core')
  } catch (e) {
    return 'playwright-core is not installed (cd js && npm ci)'
  }
  return ''
}

export function freePort() {
  return new Promise((ok, no) => {
    const s = createServer()
    s.on('error', no)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => ok(port))
    })
  })
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// Sessiond is one sessiond process, which the tests may kill and start
// again on the same port and database.
export class Sessiond {
  constructor(extraEnv = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'sessiond-browser-'))
    this.extraEnv = extraEnv
    this.proc = null
    this.log = ''
  }
  async start() {
    if (!this.port) {
      this.port = await freePort()
      this.adminPort = await freePort()
    }
    this.url = 'http://127.0.0.1:' + this.port
    this.proc = spawn(process.env.SESSIOND_BIN, ['serve'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME || this.dir,
        SESSIOND_DATABASE_URL: 'sqlite:' + join(this.dir, 'sessiond.db'),
        SESSIOND_ADDR: '127.0.0.1:' + this.port,
        SESSIOND_ADMIN_ADDR: '127.0.0.1:' + this.adminPort,
        SESSIOND_PUBLIC_URL: this.url,
        // Plain http in development: the cookie is sessiond_rt, without Secure.
        SESSIOND_COOKIE_SECURE: 'false',
        SESSIOND_ACCESS_TTL: '6s',
        SESSIOND_SWEEP_INTERVAL: '1h',
        ...this.extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const keep = (d) => { this.log = (this.log + d).slice(-20000) }
    this.proc.stdout.on('data', keep)
    this.proc.stderr.on('data', keep)
    const exited = new Promise((r) => this.proc.once('exit', r))
    this.exited = exited
    for (let i = 0; i < 300; i++) {
      try {
        const res = await fetch(this.url + '/readyz')
        if (res.ok) return
      } catch (e) { /* not yet */ }
      if (this.proc.exitCode !== null) break
      await sleep(50)
    }
    throw new Error('sessiond did not start:\n' + this.log)
  }
  // kill ends the process at once, as a crash or a lost machine would.
  async kill() {
    if (!this.proc || this.proc.exitCode !== null) return
    this.proc.kill('SIGKILL')
    await this.exited
  }
  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM')
      await Promise.race([this.exited, sleep(5000)])
      await this.kill()
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
  // refreshes is how many POST /v1/refresh this process answered, by outcome.
  async refreshes() {
    const text = await (await fetch('http://127.0.0.1:' + this.adminPort + '/metrics')).text()
    const by = { total: 0 }
    for (const m of text.matchAll(/^sessiond_refreshes_total\{code="([^"]+)"\} (\d+)$/gm)) {
      by[m[1]] = Number(m[2])
      by.total += Number(m[2])
    }
    return by
  }
  async api(method, path, body, token) {
    const headers = {}
    if (body) headers['Content-Type'] = 'application/json'
    if (token) headers.Authorization = 'Bearer ' + token
    const res = await fetch(this.url + path, { method, headers, body: body && JSON.stringify(body) })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : null }
  }
  async signUp(email) {
    const r = await this.api('POST', '/v1/signup', { email, password: PASSWORD })
    if (r.status !== 201) throw new Error('signup ' + email + ': ' + JSON.stringify(r))
  }
}

export async function launch() {
  const { chromium } = await import('playwright-core')
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}

const page = (options) => `<!doctype html><meta charset="utf-8"><title>SDK test</title>
<script type="module">
import { createClient } from './sessiond-browser.js'
window.events = []
window.sdk = createClient(${JSON.stringify(options)})
window.sdk.onChange((e) => window.events.push(e))
</script>`

// newContext is a browser profile whose pages can open the test page at
// sessiond.url + '/__sdk/' (served by the test, on sessiond's origin).
export async function newContext(browser, sessiond, options = {}) {
  const ctx = await browser.newContext()
  await ctx.route(sessiond.url + '/__sdk/**', (route) => {
    const u = new URL(route.request().url())
    if (u.pathname.endsWith('/sessiond-browser.js')) {
      return route.fulfill({ status: 200, contentType: 'text/javascript', body: sdkSource })
    }
    return route.fulfill({ status: 200, contentType: 'text/html', body: page({ baseUrl: sessiond.url, ...options }) })
  })
  return ctx
}

// openTab opens the test page in ctx and waits for the SDK.
export async function openTab(ctx, sessiond) {
  const p = await ctx.newPage()
  await p.goto(sessiond.url + '/__sdk/')
  await p.waitForFunction(() => window.sdk)
  return p
}

// waitFor polls f (in Node) until it returns something truthy.
export async function waitFor(what, f, timeout = 30000) {
  const end = Date.now() + timeout
  for (;;) {
    const v = await f()
    if (v) return v
    if (Date.now() > end) throw new Error('timed out waiting for ' + what)
    await sleep(100)
  }
}
