// Preloaded (`node --require ./optional_crypto.cjs`) by the matrix-bot-sdk bridge scenario.
//
// matrix-bot-sdk loads its end-to-end encryption module, @matrix-org/matrix-sdk-crypto-nodejs,
// when it is imported; that module's native library is not on npm: its install script downloads
// it from GitHub, which `npm ci` may not run (npm's allowScripts) or reach. The bridge does no
// encryption, so when the library cannot be loaded an empty stand-in takes its place, and any
// use of it throws. With the real library installed, the real one is used.
"use strict";

const Module = require("node:module");

const NAME = "@matrix-org/matrix-sdk-crypto-nodejs";

let available = true;
try {
    require(NAME);
} catch {
    available = false;
}

if (!available) {
    const standIn = new Proxy({}, {
        get(_target, property) {
            if (typeof property === "symbol" || property === "__esModule" || property === "then") {
                return undefined;
            }
            throw new Error(`${NAME} is not installed: no end-to-end encryption here (${String(property)})`);
        },
    });
    const load = Module._load;
    Module._load = function (request, parent, isMain) {
        return request === NAME ? standIn : load.call(this, request, parent, isMain);
    };
}
