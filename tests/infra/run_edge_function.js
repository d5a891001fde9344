// Runs the CloudFront Function's source (stdin: {source, events}) on each event, the way
// CloudFront calls it: a plain script defining handler(event), no module system.
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const handler = new Function(input.source + '\nreturn handler;')();
const results = input.events.map((event) => handler(event));
process.stdout.write(JSON.stringify(results));
