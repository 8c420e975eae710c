// The operator rules that are data, as webml.serve.rules exports them from webml.ops.OPS.
import rules from "./rules.json" with { type: "json" };

/** @type {any} */
export const RULES = rules;
