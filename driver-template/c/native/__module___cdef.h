/* What Python sees of {{module}}'s C part (cffi cdef). Every function returns 0 or -errno. */
int {{module}}_check_api(uintptr_t api);
int {{module}}_read_id(uintptr_t api, uintptr_t dev, uint32_t *out);
