// Runs the CloudFront Function's source on each event, the way CloudFront calls it: a script
// whose two imports ('cloudfront' for the KeyValueStore and 'crypto') are provided here, the
// store holding `kvs`. stdin: {jobs: [{source, events}], kvs}; stdout: one list of results per
// job, so one node process runs every mode's code.
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
// The origin the function picks (cf.selectRequestOriginById), noted on the result. Events run
// one after another, so each call is the current event's.
let selected = null;
// An event carrying `skypiKvsFails` (taken off before the function sees it) finds the store
// unreadable: every helper rejects, as when CloudFront cannot read it.
let failing = false;
const has = (key) => Object.prototype.hasOwnProperty.call(input.kvs, key);
const reachable = () => {
  if (failing) throw new Error('the key value store could not be read');
};
const cf = {
  kvs: () => ({
    get: async (key) => {
      reachable();
      if (!has(key)) throw new Error('key not found');
      return input.kvs[key];
    },
    exists: async (key) => {
      reachable();
      return has(key);
    },
  }),
  selectRequestOriginById: (id) => {
    selected = id;
  },
};
function load(source) {
  const body = source.replace(/^import (\w+) from '(cloudfront|crypto)';$/gm, '');
  return new Function('cf', 'crypto', body + '\nreturn handler;')(cf, require('crypto'));
}
(async () => {
  const results = [];
  for (const job of input.jobs) {
    const handler = load(job.source);
    const answers = [];
    for (const event of job.events) {
      selected = null;
      failing = Boolean(event.skypiKvsFails);
      delete event.skypiKvsFails;
      const result = await handler(event);
      if (selected !== null) result.selectedOrigin = selected;
      answers.push(result);
    }
    results.push(answers);
  }
  process.stdout.write(JSON.stringify(results));
})();
