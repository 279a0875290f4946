// SPDX-License-Identifier: MIT
// Getting a GPUDevice: navigator.gpu in the browser, Dawn (the `webgpu` npm package) in Node.
// Dawn is loaded lazily so that programs that never touch tensors never load it.

/** Which adapter to use. `auto`: a hardware adapter, else none (the caller falls back to the CPU backend). */
export type AdapterChoice = 'auto' | 'hardware' | 'swiftshader';

export interface DeviceOptions {
  /** Default 'auto', or the PULLBACK_GPU_ADAPTER environment variable in Node. */
  adapter?: AdapterChoice;
  powerPreference?: GPUPowerPreference;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for SwiftShader (a CPU implementation of Vulkan): correct but slow. */
  software: boolean;
  /** Features the device was created with (e.g. 'shader-f16', 'timestamp-query'). */
  features: string[];
}

export interface GpuDevice {
  device: GPUDevice;
  adapter: AdapterDescription;
}

/** Where Debian's chromium package puts SwiftShader's Vulkan ICD and its Vulkan loader. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHROMIUM_VULKAN_LOADER = '/usr/lib/chromium/libvulkan.so.1';

export const INSTALL_HINT =
  'No WebGPU adapter is available. Install a GPU driver with Vulkan support (Node uses Dawn through the `webgpu` package), ' +
  'or, for the CPU implementation SwiftShader (slow; used by the tests), `apt-get install -y chromium` and ask for ' +
  "{ adapter: 'swiftshader' } (or set PULLBACK_GPU_ADAPTER=swiftshader).";

let dawn: { gpu: GPU } | undefined;
let usingSwiftShader = false;

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node;
}

/**
 * Loads Dawn once. To use SwiftShader, the Vulkan loader must find its ICD: we point VK_ICD_FILENAMES at it
 * before Dawn starts and, when the system has no libvulkan.so.1, preload chromium's copy (RTLD_NODELETE keeps it
 * resident after Node's addon check rejects it, so Dawn's later dlopen("libvulkan.so.1") finds it by soname).
 */
async function loadDawn(swiftshader: boolean): Promise<GPU> {
  if (dawn) {
    if (swiftshader && !usingSwiftShader) throw new Error('pullback: Dawn was already started without SwiftShader; ask for { adapter: "swiftshader" } on the first call');
    return dawn.gpu;
  }
  if (swiftshader) {
    const fs = await import('node:fs');
    if (!fs.existsSync(SWIFTSHADER_ICD)) throw new Error(`${INSTALL_HINT} (${SWIFTSHADER_ICD} is missing)`);
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    if (fs.existsSync(CHROMIUM_VULKAN_LOADER) && !systemHasVulkanLoader(fs)) {
      try {
        process.dlopen({ exports: {} } as NodeJS.Module, CHROMIUM_VULKAN_LOADER, 0x2 /* NOW */ | 0x100 /* GLOBAL */ | 0x1000 /* NODELETE */);
      } catch {
        // Expected: it is not a Node addon. The library stays loaded.
      }
    }
    usingSwiftShader = true;
  }
  let mod: { create(options: string[]): GPU; globals: object };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new Error(`pullback: could not load the 'webgpu' package (npm install webgpu): ${(e as Error).message}`);
  }
  Object.assign(globalThis, mod.globals);
  dawn = { gpu: mod.create([]) };
  return dawn.gpu;
}

function systemHasVulkanLoader(fs: typeof import('node:fs')): boolean {
  return ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1', '/usr/lib/libvulkan.so.1', '/usr/lib64/libvulkan.so.1']
    .some((p) => fs.existsSync(p));
}

function describeAdapter(adapter: GPUAdapter, device: GPUDevice): AdapterDescription {
  const info = adapter.info;
  const vendor = info?.vendor ?? '';
  const architecture = info?.architecture ?? '';
  const dev = info?.device ?? '';
  const description = info?.description || [vendor, architecture, dev].filter(Boolean).join(' ') || 'unknown adapter';
  const software = /swiftshader/i.test(`${vendor} ${architecture} ${description}`) || usingSwiftShader;
  return { vendor, architecture, device: dev, description, software, features: [...device.features].map(String).sort() };
}

/**
 * Acquires a GPUDevice with the adapter's own limits (the defaults are far lower: e.g. 128 MiB storage bindings).
 * Resolves to null with adapter 'auto' when there is no hardware adapter; throws with an install hint otherwise.
 * @example const gd = await requestGpuDevice({ adapter: 'swiftshader' }); console.log(gd.adapter.description);
 */
export async function requestGpuDevice(opts: DeviceOptions = {}): Promise<GpuDevice | null> {
  const envChoice = isNode() ? (process.env.PULLBACK_GPU_ADAPTER as AdapterChoice | undefined) : undefined;
  const choice: AdapterChoice = opts.adapter ?? envChoice ?? 'auto';
  if (!['auto', 'hardware', 'swiftshader'].includes(choice)) throw new Error(`pullback: unknown adapter choice '${choice}' (auto, hardware or swiftshader)`);
  let gpu: GPU | undefined;
  if (typeof navigator !== 'undefined' && (navigator as Navigator).gpu && !isNode()) gpu = (navigator as Navigator).gpu;
  else if (isNode()) gpu = await loadDawn(choice === 'swiftshader');
  if (!gpu) {
    if (choice === 'auto') return null;
    throw new Error(INSTALL_HINT);
  }
  const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  if (!adapter) {
    if (choice === 'auto') return null;
    throw new Error(INSTALL_HINT);
  }
  const soft = /swiftshader/i.test(`${adapter.info?.vendor} ${adapter.info?.architecture} ${adapter.info?.description}`);
  if (soft && choice !== 'swiftshader') {
    // SwiftShader is 20-50x slower than good Wasm code on the same CPU: only used when asked for.
    if (choice === 'auto') return null;
    throw new Error(`${INSTALL_HINT} (only the SwiftShader software adapter was found)`);
  }
  const requiredLimits: Record<string, number> = {};
  for (const key of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension'] as const) {
    const v = adapter.limits[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('shader-f16')) requiredFeatures.push('shader-f16');
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  return { device, adapter: describeAdapter(adapter, device) };
}
