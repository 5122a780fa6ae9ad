// The gpu worker: runs the gpu-queue activities (embedding extraction, CoOp).
import { main } from './run-workers';

main(['gpu']);
