export async function runConformanceFile() { return []; }
