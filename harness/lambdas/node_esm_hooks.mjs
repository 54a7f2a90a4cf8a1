// Module resolve hook for ES-module handlers (registered by node_worker.js).
//
// Node's ES-module loader ignores NODE_PATH, but Lambda's runtimes let an ES-module handler
// import the SDK bundled with the runtime. A bare specifier that the handler's own
// node_modules cannot satisfy is therefore looked up in each NODE_PATH folder, in order.
import path from "node:path";
import { pathToFileURL } from "node:url";

const bare = (specifier) => !/^(\.{0,2}\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier);

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!bare(specifier) || err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
    for (const folder of (process.env.NODE_PATH || "").split(path.delimiter).filter(Boolean)) {
      const parentURL = pathToFileURL(path.join(folder, "sip-harness-node-path.js")).href;
      try {
        return await nextResolve(specifier, { ...context, parentURL });
      } catch (inner) {
        if (inner?.code !== "ERR_MODULE_NOT_FOUND") throw inner;
      }
    }
    throw err;
  }
}
