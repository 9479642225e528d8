// A local HTTP server for the jco test, run as its own process (the component's HTTP calls
// block the main Node thread). Echoes each request back in a JSON:API-shaped body and prints
// its port on stdout.
import http from 'node:http';

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const echo = { method: req.method, url: req.url, headers: req.headers, body };
    res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
    res.end(JSON.stringify({ data: [{ type: 'list', id: 'L1', attributes: { name: 'VIP' } }], echo }));
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
