// Each operator's validation and output-shape rule: a port of webml/ops/*.py (the reference),
// following the spec's method steps.  A rule takes the Call and the arguments by their spec
// names (options defaults applied from rules.json; absent ones undefined) and returns the
// output descriptor, or a list of them.  Operands' data types and ranks against the operator's
// limits are checked by the builder before the rule runs.

import { RULES } from "./rules.js";
import {
  MAX_RANK,
  MAX_TENSOR_COUNT,
  axesInRank,
  axisInRank,
  broadcastBidirectional,
  broadcastUnidirectional,
  castNumber,
  checkShape,
  finiteFloat,
  fmt,
  listOption,
  long,
  nonzero,
  number,
  oneOf,
  product,
  sameType,
  show,
  unsignedLong,
  unsignedLongs,
  validDimension,
} from "./checks.js";

/** @typedef {{dataType: string, shape: number[]}} Desc */
/** @typedef {import("./checks.js").Call} Call */
/** @typedef {(call: Call, a: Record<string, any>) => Desc | Desc[]} Rule */

const E = RULES.enums;
const absent = (/** @type {unknown} */ v) => v === undefined || v === null;
const desc = (/** @type {string} */ dataType, /** @type {number[]} */ shape) => ({ dataType, shape: [...shape] });
const same = (/** @type {Desc} */ d) => desc(d.dataType, d.shape);

/** @type {Record<string, Rule>} */
export const SHAPES = {};

/** @param {string[]} names @param {Rule} rule */
function define(names, rule) {
  for (const n of names) SHAPES[n] = rule;
}

// -- element-wise ------------------------------------------------------------------

/** @param {Call} c @param {Desc} a @param {Desc} b @param {string} [outputType] */
function binary(c, a, b, outputType) {
  sameType(c, [a, b], ["a", "b"]);
  const shape = broadcastBidirectional(a.shape, b.shape);
  if (!shape) throw c.error(`the shapes of a ${fmt(a.shape)} and b ${fmt(b.shape)} are not broadcastable`);
  return desc(outputType ?? a.dataType, shape);
}

define(["add", "sub", "mul", "div", "max", "min", "pow"], (c, { a, b }) => binary(c, a, b));
define(["equal", "notEqual", "greater", "greaterOrEqual", "lesser", "lesserOrEqual", "logicalAnd", "logicalOr", "logicalXor"], (c, { a, b }) =>
  binary(c, a, b, "uint8"),
);
define(["logicalNot", "isNaN", "isInfinite"], (c, { a }) => desc("uint8", a.shape));

// -- unary and activations ---------------------------------------------------------

define(
  ["abs", "neg", "sign", "ceil", "cos", "erf", "exp", "floor", "log", "reciprocal", "roundEven", "sin", "sqrt", "tan", "identity"],
  (c, { input }) => same(input),
);
define(["gelu", "hardSwish", "sigmoid", "softplus", "softsign", "tanh", "relu"], (c, { input }) => same(input));

/** A (restricted) double option, cast to the input's type. @param {Call} c @param {unknown} v @param {string} name */
function double(c, v, name) {
  const n = number(c, v, name);
  if (!Number.isFinite(Number(n))) throw c.error(`${name} must be a finite number, got ${show(v)}`);
  return n;
}

/** @param {string[]} names @returns {Rule} */
const withDoubles = (names) => (c, a) => {
  for (const n of names) double(c, a[n], n);
  return same(a.input);
};
SHAPES.elu = withDoubles(["alpha"]);
SHAPES.hardSigmoid = withDoubles(["alpha", "beta"]);
SHAPES.leakyRelu = withDoubles(["alpha"]);
SHAPES.linear = withDoubles(["alpha", "beta"]);

SHAPES.clamp = (c, { input, minValue, maxValue }) => {
  const lo = castNumber(absent(minValue) ? -Infinity : number(c, minValue, "minValue"), input.dataType);
  const hi = castNumber(absent(maxValue) ? Infinity : number(c, maxValue, "maxValue"), input.dataType);
  if (lo > hi) throw c.error(`minValue ${lo} must not be greater than maxValue ${hi} (after the cast to ${input.dataType})`);
  return same(input);
};

SHAPES.prelu = (c, { input, slope }) => {
  sameType(c, [input, slope], ["input", "slope"]);
  const shape = broadcastBidirectional(slope.shape, input.shape);
  if (!shape) throw c.error(`slope shape ${fmt(slope.shape)} is not broadcastable with input shape ${fmt(input.shape)}`);
  return desc(input.dataType, checkShape(c, shape));
};

SHAPES.softmax = (c, { input, axis }) => {
  axisInRank(c, axis, input.shape.length);
  return same(input);
};

// -- shape -------------------------------------------------------------------------

SHAPES.cast = (c, { input, dataType }) => desc(oneOf(c, dataType, RULES.typeGroups.all, "type"), input.shape);

SHAPES.concat = (c, { inputs, axis }) => {
  const ax = unsignedLong(c, axis, "axis");
  if (!(inputs.length > 0 && inputs.length <= MAX_TENSOR_COUNT))
    throw c.error(`the number of inputs (${inputs.length}) must be in [1, ${MAX_TENSOR_COUNT}]`);
  const first = inputs[0];
  const rank = first.shape.length;
  if (ax >= rank) throw c.error(`axis ${ax} must be less than the inputs' rank ${rank}`);
  const shape = [...first.shape];
  inputs.forEach((/** @type {Desc} */ x, /** @type {number} */ i) => {
    if (i === 0) return;
    if (x.dataType !== first.dataType) throw c.error(`inputs[${i}] data type ${x.dataType} must match inputs[0]'s ${first.dataType}`);
    if (x.shape.length !== rank) throw c.error(`inputs[${i}] rank ${x.shape.length} must match inputs[0]'s rank ${rank}`);
    for (let d = 0; d < rank; d++)
      if (d !== ax && x.shape[d] !== first.shape[d])
        throw c.error(`inputs[${i}] shape ${fmt(x.shape)} must match inputs[0]'s shape ${fmt(first.shape)} except along axis ${ax}`);
    shape[ax] += x.shape[ax];
  });
  return desc(first.dataType, checkShape(c, shape));
};

SHAPES.expand = (c, { input, newShape }) => {
  const ns = unsignedLongs(c, newShape, "newShape");
  const shape = broadcastUnidirectional(input.shape, ns);
  if (!shape) throw c.error(`input shape ${fmt(input.shape)} is not unidirectionally broadcastable to newShape ${fmt(ns)}`);
  return desc(input.dataType, checkShape(c, shape));
};

SHAPES.reshape = (c, { input, newShape }) => {
  const ns = unsignedLongs(c, newShape, "newShape");
  if (ns.length > MAX_RANK) throw c.error(`the length of newShape (${ns.length}) exceeds the maximum rank ${MAX_RANK}`);
  ns.forEach((d, i) => {
    if (!validDimension(d)) throw c.error(`newShape[${i}] = ${d} is not a valid dimension (an integer in [1, 2^31-1])`);
  });
  if (product(ns) !== product(input.shape))
    throw c.error(`newShape ${fmt(ns)} has ${product(ns)} elements, input shape ${fmt(input.shape)} has ${product(input.shape)}`);
  return desc(input.dataType, ns);
};

/** @param {Call} c @param {Desc} input @param {Record<string, number[]>} seqs */
function lengthsAreRank(c, input, seqs) {
  const rank = input.shape.length;
  const entries = Object.entries(seqs);
  if (entries.every(([, v]) => v.length === rank)) return;
  const lengths = entries.map(([n, v]) => `${n} (${v.length})`).join(" and ");
  const [plural, both] = entries.length > 1 ? ["s", "both "] : ["", ""];
  throw c.error(`the length${plural} of ${lengths} must ${both}equal the input rank ${rank}`);
}

SHAPES.tile = (c, { input, repetitions }) => {
  const reps = unsignedLongs(c, repetitions, "repetitions");
  lengthsAreRank(c, input, { repetitions: reps });
  if (reps.includes(0)) throw c.error(`repetitions ${fmt(reps)} must not contain 0`);
  return desc(input.dataType, checkShape(c, input.shape.map((/** @type {number} */ d, /** @type {number} */ i) => d * reps[i])));
};

SHAPES.pad = (c, { input, beginningPadding, endingPadding, mode, value }) => {
  const begin = unsignedLongs(c, beginningPadding, "beginningPadding");
  const end = unsignedLongs(c, endingPadding, "endingPadding");
  const m = oneOf(c, mode, E.paddingMode, "mode");
  number(c, value, "value");
  lengthsAreRank(c, input, { beginningPadding: begin, endingPadding: end });
  const shape = input.shape.map((/** @type {number} */ size, /** @type {number} */ i) => {
    if (m === "reflection")
      for (const [name, p] of /** @type {const} */ ([["beginningPadding", begin], ["endingPadding", end]]))
        if (p[i] >= size)
          throw c.error(`${name}[${i}] = ${p[i]} must be less than the input size ${size} of dimension ${i} in reflection mode`);
    return size + begin[i] + end[i];
  });
  return desc(input.dataType, checkShape(c, shape));
};

SHAPES.reverse = (c, { input, axes }) => {
  if (!absent(axes)) axesInRank(c, axes, input.shape.length, "axes");
  return same(input);
};

SHAPES.transpose = (c, { input, permutation }) => {
  const rank = input.shape.length;
  let perm = [...Array(rank).keys()].reverse();
  if (!absent(permutation)) {
    perm = unsignedLongs(c, permutation, "permutation");
    lengthsAreRank(c, input, { permutation: perm });
    perm = axesInRank(c, perm, rank, "permutation");
  }
  return desc(input.dataType, perm.map((p) => input.shape[p]));
};

SHAPES.slice = (c, { input, starts, sizes, strides }) => {
  const st = unsignedLongs(c, starts, "starts");
  const sz = unsignedLongs(c, sizes, "sizes");
  let sd = absent(strides) ? null : unsignedLongs(c, strides, "strides");
  if (sz.includes(0)) throw c.error(`sizes ${fmt(sz)} must not contain 0`);
  lengthsAreRank(c, input, { starts: st, sizes: sz });
  if (sd === null) sd = Array(input.shape.length).fill(1);
  else lengthsAreRank(c, input, { strides: sd });
  const strideList = sd;
  const shape = input.shape.map((/** @type {number} */ n, /** @type {number} */ i) => {
    if (strideList[i] < 1) throw c.error(`strides[${i}] = ${strideList[i]} must be at least 1`);
    if (st[i] > n) throw c.error(`starts[${i}] = ${st[i]} exceeds the input size ${n}`);
    if (st[i] + sz[i] > n) throw c.error(`starts[${i}] + sizes[${i}] = ${st[i] + sz[i]} exceeds the input size ${n}`);
    return Math.ceil(sz[i] / strideList[i]);
  });
  return desc(input.dataType, shape);
};

SHAPES.split = (c, { input, splits, axis }) => {
  const ax = unsignedLong(c, axis, "axis");
  const rank = input.shape.length;
  if (ax >= rank) throw c.error(`axis ${ax} must be less than the input rank ${rank}`);
  const dim = input.shape[ax];
  let sizes;
  if (typeof splits !== "number" && typeof splits !== "bigint") {
    sizes = unsignedLongs(c, splits, "splits");
    if (!(sizes.length > 0 && sizes.length <= MAX_TENSOR_COUNT))
      throw c.error(`the length of splits (${sizes.length}) must be in [1, ${MAX_TENSOR_COUNT}]`);
    if (sizes.includes(0)) throw c.error(`splits ${fmt(sizes)} must not contain 0`);
    const sum = sizes.reduce((x, y) => x + y, 0);
    if (sum !== dim) throw c.error(`the sum of splits ${fmt(sizes)} (${sum}) must equal the input size ${dim} along axis ${ax}`);
  } else {
    const count = unsignedLong(c, splits, "splits");
    if (!(count > 0 && count <= MAX_TENSOR_COUNT)) throw c.error(`splits (${count}) must be in [1, ${MAX_TENSOR_COUNT}]`);
    if (dim % count) throw c.error(`splits (${count}) must evenly divide the input size ${dim} along axis ${ax}`);
    sizes = Array(count).fill(dim / count);
  }
  return sizes.map((s) => desc(input.dataType, input.shape.map((/** @type {number} */ d, /** @type {number} */ i) => (i === ax ? s : d))));
};

SHAPES.triangular = (c, { input, upper, diagonal }) => {
  if (typeof upper !== "boolean") throw c.error(`upper must be a boolean, got ${show(upper)}`);
  long(c, diagonal, "diagonal");
  return same(input);
};

SHAPES.where = (c, { condition, trueValue, falseValue }) => {
  sameType(c, [trueValue, falseValue], ["trueValue", "falseValue"]);
  const values = broadcastBidirectional(trueValue.shape, falseValue.shape);
  if (!values)
    throw c.error(`the shapes of trueValue ${fmt(trueValue.shape)} and falseValue ${fmt(falseValue.shape)} are not broadcastable`);
  const shape = broadcastBidirectional(condition.shape, values);
  if (!shape) throw c.error(`the condition shape ${fmt(condition.shape)} is not broadcastable with ${fmt(values)}`);
  return desc(trueValue.dataType, checkShape(c, shape));
};

// -- indexing ----------------------------------------------------------------------

/** @param {Call} c @param {Desc} input @param {Desc} other @param {string} name */
function sameRank(c, input, other, name) {
  if (other.shape.length !== input.shape.length)
    throw c.error(`${name} rank ${other.shape.length} must equal input rank ${input.shape.length}`);
}

/** @param {Call} c @param {Desc} input @param {Desc} indices @param {number} axis */
function elementsShape(c, input, indices, axis) {
  const expected = [...input.shape];
  expected[axis] = indices.shape[axis];
  if (fmt(indices.shape) !== fmt(expected))
    throw c.error(`indices shape ${fmt(indices.shape)} must equal input shape ${fmt(input.shape)} except along axis ${axis}, i.e. ${fmt(expected)}`);
}

/** @param {Call} c @param {Desc} input @param {Desc} indices */
function ndSliceShape(c, input, indices) {
  const k = indices.shape[indices.shape.length - 1];
  if (k > input.shape.length) throw c.error(`indices shape[-1] (${k}) must not exceed input rank ${input.shape.length}`);
  return [...indices.shape.slice(0, -1), ...input.shape.slice(k)];
}

SHAPES.gather = (c, { input, indices, axis }) => {
  const ax = axisInRank(c, axis, input.shape.length);
  return desc(input.dataType, checkShape(c, [...input.shape.slice(0, ax), ...indices.shape, ...input.shape.slice(ax + 1)]));
};

SHAPES.gatherElements = (c, { input, indices, axis }) => {
  sameRank(c, input, indices, "indices");
  const ax = axisInRank(c, axis, input.shape.length);
  elementsShape(c, input, indices, ax);
  return desc(input.dataType, indices.shape);
};

SHAPES.gatherND = (c, { input, indices }) => desc(input.dataType, checkShape(c, ndSliceShape(c, input, indices)));

SHAPES.scatterElements = (c, { input, indices, updates, axis }) => {
  sameType(c, [input, updates], ["input", "updates"]);
  sameRank(c, input, indices, "indices");
  sameRank(c, input, updates, "updates");
  const ax = axisInRank(c, axis, input.shape.length);
  elementsShape(c, input, indices, ax);
  if (fmt(updates.shape) !== fmt(indices.shape)) throw c.error(`updates shape ${fmt(updates.shape)} must equal indices shape ${fmt(indices.shape)}`);
  return same(input);
};

SHAPES.scatterND = (c, { input, indices, updates }) => {
  sameType(c, [input, updates], ["input", "updates"]);
  const expected = ndSliceShape(c, input, indices);
  if (fmt(updates.shape) !== fmt(expected))
    throw c.error(`updates shape ${fmt(updates.shape)} must be indices.shape[:-1] + input.shape[indices.shape[-1]:] = ${fmt(expected)}`);
  return same(input);
};

// -- linalg ------------------------------------------------------------------------

SHAPES.matmul = (c, { a, b }) => {
  sameType(c, [a, b], ["a", "b"]);
  const [ra, rb] = [a.shape.length, b.shape.length];
  if (ra < 2 || rb < 2) throw c.error(`a and b must have rank 2 or more, got ranks ${ra} and ${rb}`);
  const [rowsA, colsA] = a.shape.slice(-2);
  const [rowsB, colsB] = b.shape.slice(-2);
  const shapes = `${fmt(a.shape)} and ${fmt(b.shape)}`;
  if (colsA !== rowsB) throw c.error(`a's columns (${colsA}) must equal b's rows (${rowsB}): shapes ${shapes}`);
  const batch = broadcastBidirectional(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (!batch) throw c.error(`the batch dimensions of a and b are not broadcastable: shapes ${shapes}`);
  return desc(a.dataType, checkShape(c, [...batch, rowsA, colsB]));
};

SHAPES.gemm = (c, { a, b, c: cc, alpha, beta, aTranspose, bTranspose }) => {
  sameType(c, [a, b], ["a", "b"]);
  double(c, alpha, "alpha");
  double(c, beta, "beta");
  const sa = aTranspose ? [...a.shape].reverse() : a.shape;
  const sb = bTranspose ? [...b.shape].reverse() : b.shape;
  if (sa[1] !== sb[0])
    throw c.error(`the columns of a (${sa[1]}, aTranspose=${Boolean(aTranspose)}) must equal the rows of b (${sb[0]}, bTranspose=${Boolean(bTranspose)})`);
  const shape = [sa[0], sb[1]];
  if (!absent(cc)) {
    if (!broadcastUnidirectional(cc.shape, shape)) throw c.error(`c shape ${fmt(cc.shape)} is not broadcastable to output shape ${fmt(shape)}`);
    sameType(c, [a, cc], ["a", "c"]);
  }
  return desc(a.dataType, checkShape(c, shape));
};

// -- conv and pool -----------------------------------------------------------------

/** @param {number[]} shape @param {string} layout @returns {Record<string, number>} */
const dims = (shape, layout) => Object.fromEntries([...layout].map((ch, i) => [ch, shape[i]]));
/** @param {string} layout @param {number} n @param {number} ch @param {number} h @param {number} w */
const layoutShape = (layout, n, ch, h, w) => (layout === "nchw" ? [n, ch, h, w] : [n, h, w, ch]);

/** @param {Call} c @param {Record<string, any>} a @param {string[]} filterLayouts */
function geometry(c, a, filterLayouts) {
  const inputLayout = oneOf(c, a.inputLayout, E.inputLayout, "inputLayout");
  const filterLayout = oneOf(c, a.filterLayout, filterLayouts, "filterLayout");
  sameType(c, [a.input, a.filter], ["input", "filter"]);
  return {
    padding: listOption(c, a.padding, "padding", 4, [0, 0, 0, 0]),
    strides: nonzero(c, listOption(c, a.strides, "strides", 2, [1, 1]), "strides"),
    dilations: nonzero(c, listOption(c, a.dilations, "dilations", 2, [1, 1]), "dilations"),
    inputLayout,
    filterLayout,
  };
}

/** @param {Call} c @param {unknown} g */
function groups(c, g) {
  const n = unsignedLong(c, g, "groups");
  if (n === 0) throw c.error("groups must not be 0");
  return n;
}

/** @param {Call} c @param {Desc} input @param {Desc | undefined} bias @param {number} channels */
function checkBias(c, input, bias, channels) {
  if (absent(bias)) return;
  const b = /** @type {Desc} */ (bias);
  if (fmt(b.shape) !== fmt([channels])) throw c.error(`bias shape ${fmt(b.shape)} must be [outputChannels] = [${channels}]`);
  sameType(c, [input, b], ["input", "bias"]);
}

/** @param {Call} c @param {Desc} input @param {string} layout @param {number[]} sizes */
function convOutput(c, input, layout, [n, ch, h, w]) {
  for (const [name, size] of /** @type {const} */ ([["height", h], ["width", w]]))
    if (!validDimension(size)) throw c.error(`the output ${name} ${size} is not a valid dimension (it must be in [1, 2^31-1])`);
  return desc(input.dataType, checkShape(c, layoutShape(layout, n, ch, h, w)));
}

/** @param {number} size @param {number} filter @param {number} begin @param {number} end @param {number} stride @param {number} dilation */
const convOutputSize = (size, filter, begin, end, stride, dilation) => Math.floor((size - ((filter - 1) * dilation + 1) + begin + end) / stride) + 1;

SHAPES.conv2d = (c, a) => {
  const o = geometry(c, a, E.conv2dFilterLayout);
  const g = groups(c, a.groups);
  const x = dims(a.input.shape, o.inputLayout);
  const f = dims(a.filter.shape, o.filterLayout);
  const [inC, outC] = [x.c, f.o];
  if (inC % g !== 0) throw c.error(`input channels ${inC} must be divisible by groups ${g}`);
  if (Math.floor(inC / g) !== f.i)
    throw c.error(
      `input channels / groups (${inC} / ${g} = ${Math.floor(inC / g)}) must equal the filter's input channels ${f.i} (filter shape ${fmt(a.filter.shape)}, layout ${o.filterLayout})`,
    );
  if (outC % g !== 0) throw c.error(`output channels ${outC} must be divisible by groups ${g}`);
  checkBias(c, a.input, a.bias, outC);
  const h = convOutputSize(x.h, f.h, o.padding[0], o.padding[1], o.strides[0], o.dilations[0]);
  const w = convOutputSize(x.w, f.w, o.padding[2], o.padding[3], o.strides[1], o.dilations[1]);
  return convOutput(c, a.input, o.inputLayout, [x.n, outC, h, w]);
};

SHAPES.convTranspose2d = (c, a) => {
  const o = geometry(c, a, E.convTranspose2dFilterLayout);
  const outputPadding = listOption(c, a.outputPadding, "outputPadding", 2, [0, 0]);
  const outputSizes = absent(a.outputSizes) ? null : listOption(c, a.outputSizes, "outputSizes", 2, []);
  if (!outputSizes && (outputPadding[0] >= o.strides[0] || outputPadding[1] >= o.strides[1]))
    throw c.error(`outputPadding ${fmt(outputPadding)} must be smaller than strides ${fmt(o.strides)}`);
  const g = groups(c, a.groups);
  const x = dims(a.input.shape, o.inputLayout);
  const f = dims(a.filter.shape, o.filterLayout);
  if (x.c !== f.i)
    throw c.error(`input channels ${x.c} must equal the filter's input channels ${f.i} (filter shape ${fmt(a.filter.shape)}, layout ${o.filterLayout})`);
  const outC = f.o * g;
  if (!validDimension(outC))
    throw c.error(`output channels (filter output channels ${f.o} * groups ${g} = ${outC}) is not a valid dimension`);
  checkBias(c, a.input, a.bias, outC);
  /** @param {number} size @param {number} filter @param {number} begin @param {number} end @param {number} stride @param {number} dilation */
  const span = (size, filter, begin, end, stride, dilation) => (size - 1) * stride + (filter - 1) * dilation + 1 - begin - end;
  const calculated = [
    span(x.h, f.h, o.padding[0], o.padding[1], o.strides[0], o.dilations[0]),
    span(x.w, f.w, o.padding[2], o.padding[3], o.strides[1], o.dilations[1]),
  ];
  let hw;
  if (outputSizes) {
    ["height", "width"].forEach((name, i) => {
      if (!(calculated[i] <= outputSizes[i] && outputSizes[i] < calculated[i] + o.strides[i]))
        throw c.error(
          `outputSizes[${i}] (output ${name}) ${outputSizes[i]} must be in [${calculated[i]}, ${calculated[i] + o.strides[i]}) given the input, filter, padding, strides and dilations`,
        );
    });
    hw = outputSizes;
  } else hw = [calculated[0] + outputPadding[0], calculated[1] + outputPadding[1]];
  return convOutput(c, a.input, o.inputLayout, [x.n, outC, hw[0], hw[1]]);
};

/** @type {Rule} */
function pool2d(c, a) {
  const layout = oneOf(c, a.layout, E.inputLayout, "layout");
  let rounding = oneOf(c, a.outputShapeRounding, E.roundingType, "outputShapeRounding");
  if (!absent(a.roundingType)) {
    const rt = oneOf(c, a.roundingType, E.roundingType, "roundingType");
    if (a.outputShapeRounding !== "floor" && rt !== rounding)
      throw c.error(`roundingType '${rt}' (the earlier name of outputShapeRounding) contradicts outputShapeRounding '${rounding}'`);
    rounding = rt;
  }
  const outputSizes = absent(a.outputSizes) ? null : unsignedLongs(c, a.outputSizes, "outputSizes");
  const x = dims(a.input.shape, layout);
  const window = nonzero(c, listOption(c, a.windowDimensions, "windowDimensions", 2, [x.h, x.w]), "windowDimensions");
  const padding = listOption(c, a.padding, "padding", 4, [0, 0, 0, 0]);
  const strides = nonzero(c, listOption(c, a.strides, "strides", 2, [1, 1]), "strides");
  if (outputSizes && outputSizes.length !== 2) throw c.error(`outputSizes must have 2 values, got ${outputSizes.length}: ${fmt(outputSizes)}`);
  const dilations = nonzero(c, listOption(c, a.dilations, "dilations", 2, [1, 1]), "dilations");
  /** @param {number} size @param {number} win @param {number} begin @param {number} end @param {number} stride @param {number} dilation */
  const sizes = (size, win, begin, end, stride, dilation) => {
    const num = size - ((win - 1) * dilation + 1) + begin + end;
    return [Math.floor(num / stride) + 1, Math.ceil(num / stride) + 1];
  };
  const height = sizes(x.h, window[0], padding[0], padding[1], strides[0], dilations[0]);
  const width = sizes(x.w, window[1], padding[2], padding[3], strides[1], dilations[1]);
  let out;
  if (outputSizes) {
    const ok = (outputSizes[0] === height[0] && outputSizes[1] === width[0]) || (outputSizes[0] === height[1] && outputSizes[1] === width[1]);
    if (!ok)
      throw c.error(
        `outputSizes ${fmt(outputSizes)} must be the floor ${fmt([height[0], width[0]])} or the ceiling ${fmt([height[1], width[1]])} of the calculated output sizes`,
      );
    out = outputSizes;
  } else {
    const i = E.roundingType.indexOf(rounding);
    out = [height[i], width[i]];
  }
  for (const [name, size] of /** @type {const} */ ([["height", out[0]], ["width", out[1]]])) {
    if (size <= 0)
      throw c.error(
        `the output ${name} ${size} is not a valid dimension: the window (windowDimensions ${fmt(window)}, dilations ${fmt(dilations)}) must fit in the padded input (${x.h}x${x.w}, padding ${fmt(padding)})`,
      );
    if (size > RULES.longMax) throw c.error(`the output ${name} ${size} is not a valid dimension (it exceeds 2^31-1)`);
  }
  return desc(a.input.dataType, checkShape(c, layoutShape(layout, x.n, x.c, out[0], out[1])));
}
define(["averagePool2d", "l2Pool2d", "maxPool2d"], pool2d);

// -- resample ----------------------------------------------------------------------

SHAPES.resample2d = (c, { input, mode, scales, sizes, axes }) => {
  oneOf(c, mode, E.interpolationMode, "mode");
  let sc = null;
  if (!absent(scales)) {
    if (typeof scales === "string" || typeof scales?.[Symbol.iterator] !== "function")
      throw c.error(`scales must be a sequence of float, got ${show(scales)}`);
    sc = [...scales].map((v, i) => Math.fround(finiteFloat(c, v, `scales[${i}]`)));
  }
  const sz = absent(sizes) ? null : unsignedLongs(c, sizes, "sizes");
  let ax = absent(axes) ? null : unsignedLongs(c, axes, "axes");
  if (sc === null) sc = [1, 1];
  else if (sc.length !== 2) throw c.error(`the length of scales (${sc.length}) must be 2`);
  else if (sc.some((s) => s <= 0)) throw c.error(`scales ${fmt(sc)} must be greater than 0`);
  if (sz) {
    if (sz.length !== 2) throw c.error(`the length of sizes (${sz.length}) must be 2`);
    nonzero(c, sz, "sizes");
  }
  const rank = input.shape.length;
  if (ax === null) ax = [2, 3];
  else {
    if (ax.length !== 2) throw c.error(`the length of axes (${ax.length}) must be 2`);
    if (new Set(ax).size !== ax.length) throw c.error(`axes ${fmt(ax)} must not contain duplicates`);
    for (const a of ax) if (a >= rank) throw c.error(`axes value ${a} must be in the range [0, ${rank})`);
  }
  const shape = [...input.shape];
  const scaleList = sc;
  ax.forEach((axis, i) => {
    // The float32 scale (exact in a double) times the size, floored: exact for sizes < 2^31.
    const size = sz ? sz[i] : Math.floor(scaleList[i] * input.shape[axis]);
    if (!validDimension(size)) {
      const source = sz ? `sizes[${i}]` : `floor(${input.shape[axis]} * scales[${i}])`;
      throw c.error(`the output size ${size} of axis ${axis} (${source}) is not a valid dimension`);
    }
    shape[axis] = size;
  });
  return desc(input.dataType, checkShape(c, shape));
};

// -- normalization -----------------------------------------------------------------

/** @param {Call} c @param {Desc} input @param {Desc | undefined} operand @param {string} name @param {number[]} shape */
function checkOperand(c, input, operand, name, shape) {
  if (absent(operand)) return;
  const o = /** @type {Desc} */ (operand);
  sameType(c, [input, o], ["input", name]);
  if (fmt(o.shape) !== fmt(shape)) throw c.error(`${name} shape ${fmt(o.shape)} must be ${fmt(shape)}`);
}

SHAPES.batchNormalization = (c, { input, mean, variance, scale, bias, axis, epsilon }) => {
  const ax = axisInRank(c, axis, input.shape.length);
  const features = [input.shape[ax]];
  checkOperand(c, input, mean, "mean", features);
  checkOperand(c, input, variance, "variance", features);
  double(c, epsilon, "epsilon");
  checkOperand(c, input, scale, "scale", features);
  checkOperand(c, input, bias, "bias", features);
  return same(input);
};

SHAPES.instanceNormalization = (c, { input, scale, bias, epsilon, layout }) => {
  const l = oneOf(c, layout, E.normalizationLayout, "layout");
  double(c, epsilon, "epsilon");
  const channels = [input.shape[l === "nchw" ? 1 : 3]];
  checkOperand(c, input, scale, "scale", channels);
  checkOperand(c, input, bias, "bias", channels);
  return same(input);
};

SHAPES.layerNormalization = (c, { input, scale, bias, axes, epsilon }) => {
  const rank = input.shape.length;
  const ax = absent(axes) ? [...Array(rank).keys()].slice(1) : axesInRank(c, axes, rank);
  double(c, epsilon, "epsilon");
  const sizes = ax.map((a) => input.shape[a]);
  for (const [operand, name] of /** @type {const} */ ([[scale, "scale"], [bias, "bias"]])) {
    if (absent(operand)) continue;
    sameType(c, [input, operand], ["input", name]);
    if (operand.shape.length !== ax.length)
      throw c.error(`${name} rank ${operand.shape.length} must equal the number of axes ${fmt(ax)} (${ax.length})`);
  }
  checkOperand(c, input, scale, "scale", sizes);
  checkOperand(c, input, bias, "bias", sizes);
  return same(input);
};

// -- reduce ------------------------------------------------------------------------

/** @param {Call} c @param {number[]} shape @param {unknown} axes @param {boolean} keep */
function reductionShape(c, shape, axes, keep) {
  const rank = shape.length;
  const ax = absent(axes) ? [...Array(rank).keys()] : axesInRank(c, axes, rank);
  return keep ? shape.map((d, i) => (ax.includes(i) ? 1 : d)) : shape.filter((_, i) => !ax.includes(i));
}

define(
  Object.keys(RULES.operators).filter((n) => n.startsWith("reduce")),
  (c, { input, axes, keepDimensions }) => desc(input.dataType, reductionShape(c, input.shape, axes, Boolean(keepDimensions))),
);

define(["argMin", "argMax"], (c, { input, axis, keepDimensions, outputDataType }) => {
  const ax = axisInRank(c, axis, input.shape.length);
  const type = oneOf(c, outputDataType, E.argOutputDataType, "outputDataType");
  const high = 2 ** (RULES.dataTypes[type].bits - 1) - 1;
  if (input.shape[ax] > high)
    throw c.error(`input dimension ${input.shape[ax]} along axis ${ax} exceeds the maximum of outputDataType ${type} (${high})`);
  return desc(type, reductionShape(c, input.shape, [ax], Boolean(keepDimensions)));
});

SHAPES.cumulativeSum = (c, { input, axis }) => {
  axisInRank(c, axis, input.shape.length);
  return same(input);
};

// -- recurrent ---------------------------------------------------------------------

const R = RULES.recurrent;

/** @param {Call} c @param {unknown} activations */
function activationNames(c, activations) {
  if (absent(activations)) return null;
  if (typeof activations === "string" || typeof (/** @type {any} */ (activations))[Symbol.iterator] !== "function")
    throw c.error(`activations must be a sequence of activation names, got ${show(activations)}`);
  return [.../** @type {Iterable<unknown>} */ (activations)].map((a, i) => oneOf(c, a, E.recurrentActivation, `activations[${i}]`));
}

/**
 * The steps gru, gruCell, lstm and lstmCell share (webml/ops/recurrent.py CellKind.check).
 * @param {Call} c @param {Record<string, any>} a @param {number} hidden @param {number} gates @param {number[]} directions @param {number | null} steps
 */
function recurrentCheck(c, a, hidden, gates, directions, steps) {
  const op = RULES.operators[c.op];
  const input = a.input;
  const [batch, inputSize] = input.shape.slice(-2);
  const stacked = [...directions, gates * hidden];
  const state = [...directions, batch, hidden];
  /** @type {Record<string, number[]>} */
  const shapes = {
    weight: [...stacked, inputSize],
    recurrentWeight: [...stacked, hidden],
    bias: stacked,
    recurrentBias: stacked,
    peepholeWeight: [...directions, R.peepholeGates * hidden],
    hiddenState: state,
    cellState: state,
    initialHiddenState: state,
    initialCellState: state,
  };
  const operandArgs = [...op.arguments, ...op.options].filter((x) => x.operand);
  const required = operandArgs.filter((x) => x.operand !== "optional" && x.name !== "input").map((x) => x.name);
  const optional = operandArgs.filter((x) => x.operand === "optional").map((x) => x.name);
  /** @param {string} name */
  const typeOf = (name) => {
    const v = a[name];
    if (!absent(v) && v.dataType !== input.dataType) throw c.error(`${name} data type ${v.dataType} must match input's ${input.dataType}`);
  };
  /** @param {string} name */
  const shapeOf = (name) => {
    const v = a[name];
    if (!absent(v) && fmt(v.shape) !== fmt(shapes[name])) throw c.error(`${name} shape ${fmt(v.shape)} must be ${fmt(shapes[name])}`);
  };
  required.forEach(typeOf);
  if (steps !== null && input.shape[0] !== steps) throw c.error(`input.shape[0] (${input.shape[0]}) must equal steps (${steps})`);
  required.forEach(shapeOf);
  if (!validDimension(hidden * 2 * gates)) throw c.error(`hiddenSize * ${2 * gates} (${hidden * 2 * gates}) is not a valid dimension`);
  for (const name of optional) {
    typeOf(name);
    shapeOf(name);
  }
}

/** @param {Call} c @param {string[] | null} activations @param {string[]} def */
function activationList(c, activations, def) {
  if (activations && activations.length !== def.length) throw c.error(`activations must have ${def.length} entries, got ${activations.length}`);
}

/** @param {number} gates @param {string[]} layouts @param {string[]} defaults @param {number} states @param {boolean} positiveSteps @returns {Rule} */
const network = (gates, layouts, defaults, states, positiveSteps) => (c, a) => {
  const steps = unsignedLong(c, a.steps, "steps");
  const hidden = unsignedLong(c, a.hiddenSize, "hiddenSize");
  const direction = oneOf(c, a.direction, E.recurrentDirection, "direction");
  oneOf(c, a.layout, layouts, "layout");
  const activations = activationNames(c, a.activations);
  if (positiveSteps && steps === 0) throw c.error("steps must be greater than 0");
  const numDirections = direction === "both" ? 2 : 1;
  recurrentCheck(c, a, hidden, gates, [numDirections], steps);
  activationList(c, activations, defaults);
  const state = [numDirections, a.input.shape[1], hidden];
  const out = Array.from({ length: states }, () => desc(a.input.dataType, checkShape(c, state)));
  if (a.returnSequence) out.push(desc(a.input.dataType, checkShape(c, [steps, ...state], "output sequence")));
  return out;
};

/** @param {number} gates @param {string[]} layouts @param {string[]} defaults @param {number} states @returns {Rule} */
const cell = (gates, layouts, defaults, states) => (c, a) => {
  const hidden = unsignedLong(c, a.hiddenSize, "hiddenSize");
  oneOf(c, a.layout, layouts, "layout");
  const activations = activationNames(c, a.activations);
  recurrentCheck(c, a, hidden, gates, [], null);
  activationList(c, activations, defaults);
  const d = desc(a.input.dataType, checkShape(c, [a.input.shape[0], hidden]));
  return states === 1 ? d : Array.from({ length: states }, () => same(d));
};

SHAPES.gru = network(R.gruGates, E.gruWeightLayout, R.gruActivations, 1, false);
SHAPES.lstm = network(R.lstmGates, E.lstmWeightLayout, R.lstmActivations, 2, true);
SHAPES.gruCell = cell(R.gruGates, E.gruWeightLayout, R.gruActivations, 1);
SHAPES.lstmCell = cell(R.lstmGates, E.lstmWeightLayout, R.lstmActivations, 2);

// -- quantize ----------------------------------------------------------------------

/** @param {Call} c @param {Desc} input @param {Desc} scale @param {Desc} zeroPoint */
function blockwise(c, input, scale, zeroPoint) {
  for (const [name, o] of /** @type {const} */ ([["scale", scale], ["zeroPoint", zeroPoint]]))
    if (o.shape.length !== input.shape.length) throw c.error(`${name} rank ${o.shape.length} must equal input rank ${input.shape.length}`);
  if (fmt(scale.shape) !== fmt(zeroPoint.shape)) throw c.error(`scale shape ${fmt(scale.shape)} must equal zeroPoint shape ${fmt(zeroPoint.shape)}`);
  if (!scale.shape.every((s, i) => input.shape[i] % s === 0))
    throw c.error(
      `scale and zeroPoint shape ${fmt(scale.shape)} is not blockwise broadcastable to input shape ${fmt(input.shape)}: each dimension must divide input's`,
    );
}

SHAPES.quantizeLinear = (c, { input, scale, zeroPoint }) => {
  if (scale.dataType !== input.dataType) throw c.error(`scale data type ${scale.dataType} must match input's ${input.dataType}`);
  blockwise(c, input, scale, zeroPoint);
  return desc(zeroPoint.dataType, input.shape);
};

SHAPES.dequantizeLinear = (c, { input, scale, zeroPoint }) => {
  if (zeroPoint.dataType !== input.dataType) throw c.error(`zeroPoint data type ${zeroPoint.dataType} must match input's ${input.dataType}`);
  blockwise(c, input, scale, zeroPoint);
  return desc(scale.dataType, input.shape);
};
