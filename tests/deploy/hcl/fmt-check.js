// Exit 1 and name each file hclwrite.Format would change (terraform fmt -check, short of
// terraform's own binary); exit 0 when every file is formatted. Usage: node fmt-check.js FILE...
"use strict";
const fs = require("fs");
const { format } = require("@cdktf/hcl-tools");

(async () => {
  let unformatted = 0;
  for (const file of process.argv.slice(2)) {
    const text = fs.readFileSync(file, "utf8");
    if ((await format(text)) !== text) {
      unformatted += 1;
      console.log(`not formatted: ${file}`);
    }
  }
  process.exit(unformatted ? 1 : 0);
})();
