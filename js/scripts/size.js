// Prints the SDK's size as shipped minified and gzipped (esbuild --minify,
// gzip -9), the figure js/README.md states.
import { build } from 'esbuild'
import { gzipSync } from 'node:zlib'
import { readFileSync } from 'node:fs'

const entry = new URL('../src/sessiond-browser.js', import.meta.url).pathname
const out = await build({ entryPoints: [entry], bundle: true, minify: true, format: 'esm', write: false, target: 'es2020' })
const min = out.outputFiles[0].contents
const gz = gzipSync(min, { level: 9 })
console.log(`source ${readFileSync(entry).length} B, minified ${min.length} B, minified+gzip -9 ${gz.length} B (${(gz.length / 1024).toFixed(2)} KiB)`)
