import { parentPort, workerData } from 'node:worker_threads';
import { ChainAppender } from './chain-appender';
import { GroupCommitter } from './group-committer';
import type { AppendRequest, AuditWriterSettings, FromWriter, ToWriter } from './audit-writer';

/*
 * The audit writer thread (started by AuditWriterThread): group-commits the entries the request thread sends,
 * chaining and hashing them and talking to Postgres here, off the event loop that serves requests.
 */
const port = parentPort;
if (!port) throw new Error('audit-writer.worker runs as a worker thread');
const settings = workerData as AuditWriterSettings;
const post = (message: FromWriter) => port.postMessage(message);

const appender = new ChainAppender(settings.databaseUrl, (error) => post({ kind: 'connection-lost', message: error.message }));
const committer = new GroupCommitter<AppendRequest, number>(async (requests) => {
  const records = await appender.append(requests.flatMap((request) => request.entries));
  let offset = 0;
  return requests.map((request) => {
    const first = records[offset].sequence;
    offset += request.entries.length;
    return first;
  });
}, settings.groupCommit);

port.on('message', (message: ToWriter) => {
  switch (message.kind) {
    case 'append':
      committer.submit(message).then(
        (firstSequence) => post({ kind: 'appended', id: message.id, firstSequence, batches: committer.batches }),
        (error: Error) => post({ kind: 'failed', id: message.id, message: error.message, batches: committer.batches }),
      );
      return;
    case 'forget-head':
      appender.forgetHead();
      return;
    case 'close':
      void committer
        .drain()
        .then(() => appender.close())
        .finally(() => {
          post({ kind: 'closed' });
          port.close();
        });
      return;
  }
});
