// skypi's edge rules as a CloudFront Function (cloudfront-js-2.0, viewer request), on every
// behaviour but /view/* (view-request.js has its own function): common.js, then this part.
//
// Upload requests bigger than API Gateway and Lambda can carry are answered here with the way
// that works; every other request the API takes goes on unchanged, and a read is checked and
// mapped to its object by common.js's read. The __PLACEHOLDERS__ are filled in, and the code
// minified, at synth time (infra/cdn.py): comments cost nothing against the 10 KB quota.

var MAX_UPLOAD_REQUEST_BYTES = __MAX_UPLOAD_REQUEST_BYTES__;
var BUCKET_ORIGIN = '__BUCKET_ORIGIN__';

// A checked read goes to the bucket as `key`, spelled one way whatever the viewer sent (S3
// decodes it back): CloudFront looks in its cache after this function, so that one spelling
// is the cache key, and the one path an invalidation of the key names. Under a bucket
// behaviour it is on its way there; elsewhere ('/') the bucket origin is chosen, and the
// viewer's query dropped, as a bucket behaviour would (S3 reads some query parameters).
function toBucket(request, key) {
    if (!startsWithAny(request.uri, READ_PREFIXES)) {
        cf.selectRequestOriginById(BUCKET_ORIGIN);
        request.querystring = {};
    }
    request.uri = '/' + key.split('/').map(encodeSegment).join('/');
    return request;
}

function apiRequest(request) {
    var length = request.headers['content-length'];
    var upload = ['/legacy', '/legacy/', '/'].indexOf(request.uri) !== -1;
    if (request.method !== 'POST' || !upload) return request;
    // A chunked body has no length to check here, and API Gateway answers an oversized one
    // with an opaque error: uploads must declare their length (twine and uv publish do).
    if (!length || !/^[0-9]+$/.test(length.value)) {
        return respond(411, 'Length Required', { 'content-type': 'text/plain' },
            'Uploads must send Content-Length (twine and uv publish do).\n');
    }
    if (Number(length.value) > MAX_UPLOAD_REQUEST_BYTES) {
        return respond(413, 'Payload Too Large', { 'content-type': 'text/plain' },
            'Upload too large for this endpoint: the request is ' + length.value +
            ' bytes and uploads through API Gateway and Lambda are capped at ' +
            MAX_UPLOAD_REQUEST_BYTES + ' bytes by AWS Lambda\'s 6 MB payload limit. ' +
            'Publish larger files straight to storage with `skypi publish FILE` (up to 8.9 GB, ' +
            'resumable), or `aws s3 cp FILE s3://<bucket>/packages/<project>/` ' +
            '(the index lists them within seconds).\n');
    }
    return request;
}

async function handler(event) {
    var request = event.request;
    var path = request.uri;
    var several = severalAuthorizations(request);
    if (several) return several;
    var where = route(request.method, path);
    if (where === 'api') return apiRequest(request);
    if (where === 'none') return notFound();
    return read(request, path);
}
