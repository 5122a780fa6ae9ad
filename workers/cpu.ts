// The cpu worker: runs the workflows and the cpu-queue activities (planning, zero-shot, the
// linear probe, summary, comparison, report).
import { main } from './run-workers';

main(['cpu']);
