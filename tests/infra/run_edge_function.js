// Runs the CloudFront Function's source on each event, the way CloudFront calls it: a script
// whose two imports ('cloudfront' for the KeyValueStore and 'crypto') are provided here, the
// store holding `kvs`. stdin: {jobs: [{source, events}], kvs}; stdout: one list of results per
// job, so one node process runs every mode's code.
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const cf = {
  kvs: () => ({
    get: async (key) => {
      if (!Object.prototype.hasOwnProperty.call(input.kvs, key)) throw new Error('key not found');
      return input.kvs[key];
    },
  }),
};
function load(source) {
  const body = source.replace(/^import (\w+) from '(cloudfront|crypto)';$/gm, '');
  return new Function('cf', 'crypto', body + '\nreturn handler;')(cf, require('crypto'));
}
Promise.all(
  input.jobs.map((job) => {
    const handler = load(job.source);
    return Promise.all(job.events.map((event) => handler(event)));
  }),
).then((results) => {
  process.stdout.write(JSON.stringify(results));
});
