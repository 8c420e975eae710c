// The page's side of run-chromium.mjs: runs WGSL compute jobs on the browser's WebGPU.
// Loaded as a classic script by the page that run-chromium.mjs serves; it defines
// window.webmlAdapter() and window.webmlRun(jobs).

/**
 * @typedef {{binding: number, type: 'read-only-storage'|'storage'|'uniform', data?: string, size?: number}} Binding
 * @typedef {{name: string, source: string, bindings: Binding[], workgroups: number[], read: number[]}} Job
 * @typedef {{results: Record<string, Record<string, string>>, errors: Record<string, string[]>}} Outcome
 */

/** @type {Promise<{adapter: GPUAdapter, device: GPUDevice}> | undefined} */
let opened;

/** The adapter's description and the device (every feature the adapter has), opened once. */
function open() {
  opened ??= (async () => {
    if (!navigator.gpu) throw new Error(`no navigator.gpu (secure context: ${window.isSecureContext})`);
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error('navigator.gpu.requestAdapter() gave no adapter');
    const requiredFeatures = /** @type {GPUFeatureName[]} */ ([...adapter.features]);
    const device = await adapter.requestDevice({ requiredFeatures });
    return { adapter, device };
  })();
  return opened;
}

/** @param {string} b64 @returns {Uint8Array} */
function fromBase64(b64) {
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** @param {Uint8Array} bytes @returns {string} */
function toBase64(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** @param {GPUDevice} device @returns {Promise<string[]>} the errors of the scopes pushed by pushScopes */
async function popScopes(device) {
  const errors = [];
  for (let i = 0; i < 3; i++) {
    const e = await device.popErrorScope();
    if (e) errors.push(e.message.trim());
  }
  return errors;
}

/** @param {GPUDevice} device */
function pushScopes(device) {
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('internal');
}

/**
 * Runs one job: its module (entry point `main`, layout "auto"), one buffer per binding in group 0,
 * one dispatch; returns the read bindings' bytes (base64) by binding number.
 * @param {GPUDevice} device
 * @param {Job} job
 * @returns {Promise<{bytes?: Record<string, string>, errors: string[]}>}
 */
async function runJob(device, job) {
  const datas = new Map(job.bindings.map((b) => [b.binding, b.data ? fromBase64(b.data) : new Uint8Array(0)]));
  for (const b of job.bindings) {
    const length = /** @type {Uint8Array} */ (datas.get(b.binding)).length;
    if (length > (b.size ?? length)) return { errors: [`binding ${b.binding}: ${length} bytes of data for size ${b.size}`] };
  }
  const missing = job.read.filter((n) => !datas.has(n));
  if (missing.length) return { errors: [`read names bindings ${missing.join(', ')}, which the job does not have`] };
  pushScopes(device);
  const module = device.createShaderModule({ code: job.source, label: job.name });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos}: ${m.message}`);
  errors.push(...(await popScopes(device)).filter((e) => !(errors.length && e.startsWith('Error while parsing WGSL'))));
  if (errors.length) return { errors };
  let pipeline;
  try {
    pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  } catch (err) {
    return { errors: [`pipeline: ${/** @type {Error} */ (err).message.trim()}`] };
  }
  pushScopes(device);
  const usages = { 'read-only-storage': GPUBufferUsage.STORAGE, storage: GPUBufferUsage.STORAGE, uniform: GPUBufferUsage.UNIFORM };
  /** @type {Map<number, {buffer: GPUBuffer, size: number}>} */
  const buffers = new Map();
  for (const b of job.bindings) {
    const data = /** @type {Uint8Array} */ (datas.get(b.binding));
    const size = b.size ?? data.length;
    const buffer = device.createBuffer({
      label: `${job.name} @binding(${b.binding})`,
      size: Math.max(16, Math.ceil(size / 16) * 16),
      usage: usages[b.type] | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Uint8Array(buffer.getMappedRange()).set(data);
    buffer.unmap();
    buffers.set(b.binding, { buffer, size });
  }
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: job.bindings.map((b) => ({ binding: b.binding, resource: { buffer: /** @type {GPUBuffer} */ (buffers.get(b.binding)?.buffer) } })),
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  const [x = 1, y = 1, z = 1] = job.workgroups;
  pass.dispatchWorkgroups(x, y, z);
  pass.end();
  /** @type {Map<number, GPUBuffer>} */
  const staging = new Map();
  for (const n of job.read) {
    const source = /** @type {{buffer: GPUBuffer}} */ (buffers.get(n));
    const buffer = device.createBuffer({ size: source.buffer.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(source.buffer, 0, buffer, 0, source.buffer.size);
    staging.set(n, buffer);
  }
  device.queue.submit([encoder.finish()]);
  const late = await popScopes(device);
  if (late.length) return { errors: late };
  /** @type {Record<string, string>} */
  const bytes = {};
  for (const [n, buffer] of staging) {
    await buffer.mapAsync(GPUMapMode.READ);
    bytes[String(n)] = toBase64(new Uint8Array(buffer.getMappedRange()).slice(0, buffers.get(n)?.size));
    buffer.unmap();
    buffer.destroy();
  }
  for (const { buffer } of buffers.values()) buffer.destroy();
  return { bytes, errors: [] };
}

/** @returns {Promise<Record<string, string>>} */
async function webmlAdapter() {
  const { adapter } = await open();
  const { vendor, architecture, device, description } = adapter.info;
  return { vendor, architecture, device, description, features: [...adapter.features].sort().join(' ') };
}

/** @param {Job[]} jobs @returns {Promise<Outcome>} */
async function webmlRun(jobs) {
  const { device } = await open();
  /** @type {Outcome} */
  const outcome = { results: {}, errors: {} };
  for (const job of jobs) {
    const { bytes, errors } = await runJob(device, job);
    if (errors.length) outcome.errors[job.name] = errors;
    else if (bytes) outcome.results[job.name] = bytes;
  }
  return outcome;
}

Object.assign(window, { webmlAdapter, webmlRun });
