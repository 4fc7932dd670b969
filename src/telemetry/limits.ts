/** Most label sets kept per family before folding into `_other` (the golden signals and Istio's families alike). */
export const MAX_SERIES = 2000;
