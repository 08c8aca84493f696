#include "hashsieve/queue/job_queue.h"
