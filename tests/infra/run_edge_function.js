// Runs the CloudFront Function's source (stdin: {source, events, kvs}) on each event, the way
// CloudFront calls it: a script whose two imports ('cloudfront' for the KeyValueStore and
// 'crypto') are provided here, the store holding `kvs`.
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const body = input.source.replace(/^import (\w+) from '(cloudfront|crypto)';$/gm, '');
const cf = {
  kvs: () => ({
    get: async (key) => {
      if (!(key in input.kvs)) throw new Error('key not found');
      return input.kvs[key];
    },
  }),
};
const handler = new Function('cf', 'crypto', body + '\nreturn handler;')(cf, require('crypto'));
Promise.all(input.events.map((event) => handler(event))).then((results) => {
  process.stdout.write(JSON.stringify(results));
});
