/** pgpilot's version: the instrumentation scope version of its meter and tracer (a test keeps it equal to package.json). */
export const VERSION = "0.1.0";
