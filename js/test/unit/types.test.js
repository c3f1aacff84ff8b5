// The shipped .d.ts and the module agree: every member of the Client
// interface exists on a client, with the same kind (method or property),
// and a client has nothing the types leave out; the module's exports are
// the declared ones.
import test from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import * as sdk from '../../src/sessiond-browser.js'

const dts = await readFile(new URL('../../src/sessiond-browser.d.ts', import.meta.url), 'utf8')

// declared returns the Client interface's members: name → 'method' | 'property'.
function declared() {
  const body = /export interface Client \{([\s\S]*?)\n\}/.exec(dts)[1]
  const members = new Map()
  for (const line of body.split('\n')) {
    const m = /^ {2}(?:readonly )?(\w+)(<[^>]*>)?(\(|\??:)/.exec(line)
    if (m) members.set(m[1], m[3] === '(' ? 'method' : 'property')
  }
  return members
}

test('the Client interface of the .d.ts is what createClient returns', () => {
  const c = sdk.createClient({ baseUrl: 'https://sessiond.test', bind: false, env: { locks: null, BroadcastChannel: null, localStorage: null, indexedDB: null } })
  try {
    const want = declared()
    assert.ok(want.size > 20, 'parsed the interface')
    for (const [name, kind] of want) {
      assert.ok(name in c, `${name} is declared but missing`)
      assert.equal(typeof c[name] === 'function' ? 'method' : 'property', kind, `${name} is a ${kind} in the .d.ts`)
    }
    for (const name of Object.keys(c)) assert.ok(want.has(name), `${name} exists but is not declared`)
  } finally {
    c.close()
  }
})

test('the module exports what the .d.ts declares as values', () => {
  const values = [...dts.matchAll(/^export (?:class|function|const) (\w+)/gm)].map((m) => m[1]).sort()
  assert.deepEqual(Object.keys(sdk).sort(), values)
})
