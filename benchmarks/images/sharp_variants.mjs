// The sharp (libvips) peer for bench_images.py: the same widths, formats and qualities as
// sitedeploy's images stage, with a fixed number of images in flight.
//
//   node sharp_variants.mjs CONFIG.json
//
// CONFIG: {inputs: [...], out: dir, widths: [..], formats: [..], quality: {..},
//          inFlight: 2, avifEffort: 4, webpEffort: 4}
// Prints one JSON line: {seconds, images, bytes}.
import fs from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";

const config = JSON.parse(await fs.readFile(process.argv[2], "utf8"));
const FALLBACK = { jpeg: "jpeg", png: "png", webp: "webp", avif: "avif", gif: "png" };
const EXT = { jpeg: "jpg", png: "png", webp: "webp", avif: "avif" };

function targetWidths(width) {
  const wanted = new Set(config.widths.filter((w) => w <= width));
  if (width < Math.max(...config.widths)) wanted.add(width);
  return [...wanted].sort((a, b) => a - b);
}

function encoder(pipeline, format) {
  const q = config.quality;
  switch (format) {
    case "jpeg": return pipeline.jpeg({ quality: q.jpeg, progressive: true, chromaSubsampling: "4:2:0" });
    case "png": return pipeline.png({ compressionLevel: 6 });  // zlib 6, as sitedeploy
    case "webp": return pipeline.webp({ quality: q.webp, effort: config.webpEffort ?? 4 });
    case "avif": return pipeline.avif({ quality: q.avif, effort: config.avifEffort, chromaSubsampling: "4:2:0" });
  }
  throw new Error(`unknown format ${format}`);
}

async function variantsOf(input) {
  const source = sharp(input).rotate();  // apply EXIF orientation, metadata stripped by default
  const meta = await sharp(input).metadata();
  const upright = (meta.orientation || 1) >= 5 ? meta.height : meta.width;
  const fallback = FALLBACK[meta.format];
  const formats = [fallback, ...config.formats.filter((f) => f !== fallback)];
  const stem = path.parse(input).name;
  let bytes = 0;
  for (const width of targetWidths(upright)) {
    const resized = source.clone().resize({ width, kernel: "lanczos3" }).keepIccProfile();
    for (const format of formats) {
      const data = await encoder(resized.clone(), format).toBuffer();
      await fs.writeFile(path.join(config.out, `${stem}.${width}w.${EXT[format]}`), data);
      bytes += data.length;
    }
  }
  return bytes;
}

await fs.mkdir(config.out, { recursive: true });
const queue = [...config.inputs];
let bytes = 0;
const started = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: config.inFlight }, async () => {
    for (let input = queue.shift(); input; input = queue.shift()) {
      const written = await variantsOf(input);  // not `bytes += await`: that loses updates
      bytes += written;
    }
  }),
);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ seconds, images: config.inputs.length, bytes }));
