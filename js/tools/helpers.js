// Shared set-up of the unit tests: a client connected to the fake service.
import { connect } from "../src/index.js";
import { startFake } from "./fake-service.js";

/** @param {{maxTensorByteLength?: number}} [options] */
export async function fakeContext(options = {}) {
  const fake = await startFake(options);
  const ml = await connect({ url: fake.url, token: fake.token });
  const context = await ml.createContext();
  return {
    fake,
    ml,
    context,
    async close() {
      ml.close();
      await fake.close();
    },
  };
}
