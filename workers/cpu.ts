// The cpu worker: runs the workflows and the cpu-queue activities (planning, heads, report).
import { main } from './run-workers';

main(['cpu']);
