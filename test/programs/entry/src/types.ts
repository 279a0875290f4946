// Types only: an import of these without `import type` must vanish from the emitted JavaScript.
export interface Spring {
  k: number;
  rest: number;
}
